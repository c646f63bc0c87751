// Command baseline-proxy is a bare Hertz pass-through proxy: every
// request is forwarded to one upstream with the Hertz client and the
// answer streamed back chunk by chunk, with no auth, admission, routing or
// metering. The gateway benchmark measures it beside the gateway, so the
// gateway's own cost can be told apart from the cost of any Hertz proxy.
//
// Usage:
//
//	baseline-proxy -addr 127.0.0.1:18191 -upstream http://127.0.0.1:18190
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/client"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/protocol"
	"github.com/cloudwego/hertz/pkg/protocol/http1/resp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18191", "listen address")
	upstream := flag.String("upstream", "http://127.0.0.1:18190", "upstream base URL")
	flag.Parse()
	if err := run(*addr, strings.TrimRight(*upstream, "/")); err != nil {
		fmt.Fprintln(os.Stderr, "baseline-proxy:", err)
		os.Exit(1)
	}
}

func run(addr, upstream string) error {
	cli, err := client.NewClient(client.WithResponseBodyStream(true), client.WithMaxConnsPerHost(1024),
		client.WithDialTimeout(5*time.Second), client.WithNoDefaultUserAgentHeader(true))
	if err != nil {
		return err
	}
	h := server.New(server.WithHostPorts(addr), server.WithDisablePrintRoute(true), server.WithExitWaitTime(2*time.Second))
	h.NoRoute(func(c context.Context, ctx *app.RequestContext) { forward(c, ctx, cli, upstream) })
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- h.Run() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := h.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// forward relays one request: headers and body as received, the answer
// streamed back with a flush per read.
func forward(c context.Context, ctx *app.RequestContext, cli *client.Client, upstream string) {
	req := protocol.AcquireRequest()
	defer protocol.ReleaseRequest(req)
	ctx.Request.Header.CopyTo(&req.Header)
	req.SetRequestURI(upstream + string(ctx.Request.URI().RequestURI()))
	req.SetBodyRaw(ctx.Request.Body())
	up := protocol.AcquireResponse()
	defer protocol.ReleaseResponse(up)
	if err := cli.Do(c, req, up); err != nil {
		ctx.String(502, "upstream: %v", err)
		return
	}
	defer up.CloseBodyStream() //nolint:errcheck
	ctx.Response.SetStatusCode(up.StatusCode())
	ctx.Response.Header.SetContentTypeBytes(up.Header.ContentType())
	w := resp.NewChunkedBodyWriter(&ctx.Response, ctx.GetWriter())
	ctx.Response.HijackWriter(w)
	buf := make([]byte, 32<<10)
	body := up.BodyStream()
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if werr := w.Flush(); werr != nil {
				return
			}
		}
		if err != nil { // io.EOF or a failed upstream: the stream ends either way
			return
		}
	}
}
