// Package kratoslog sends the Kratos framework's own log lines
// ("[HTTP] server listening on ...") through a service's slog logger, so
// they come out as the same redacted JSON as everything else.
package kratoslog

import (
	"context"
	"fmt"
	"log/slog"

	klog "github.com/go-kratos/kratos/v2/log"
)

// Logger adapts an slog.Logger to klog.Logger.
type Logger struct{ L *slog.Logger }

var _ klog.Logger = Logger{}

// New returns the adapter for l.
func New(l *slog.Logger) Logger { return Logger{L: l} }

// Log implements klog.Logger.
func (k Logger) Log(level klog.Level, keyvals ...any) error {
	lv := slog.LevelInfo
	switch level {
	case klog.LevelDebug:
		lv = slog.LevelDebug
	case klog.LevelWarn:
		lv = slog.LevelWarn
	case klog.LevelError, klog.LevelFatal:
		lv = slog.LevelError
	}
	msg := "kratos"
	var attrs []any
	for i := 0; i+1 < len(keyvals); i += 2 {
		key := fmt.Sprint(keyvals[i])
		if key == klog.DefaultMessageKey {
			msg = fmt.Sprint(keyvals[i+1])
			continue
		}
		attrs = append(attrs, key, keyvals[i+1])
	}
	k.L.Log(context.Background(), lv, msg, attrs...)
	return nil
}
