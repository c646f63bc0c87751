package kratoslog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	klog "github.com/go-kratos/kratos/v2/log"
)

func TestLog(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewJSONHandler(&buf, nil)))
	_ = l.Log(klog.LevelWarn, klog.DefaultMessageKey, "[HTTP] server listening on: [::]:18101", "kind", "server")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["msg"] != "[HTTP] server listening on: [::]:18101" || rec["level"] != "WARN" || rec["kind"] != "server" {
		t.Fatalf("record = %v", rec)
	}
}
