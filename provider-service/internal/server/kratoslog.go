package server

import (
	"context"
	"fmt"
	"log/slog"

	klog "github.com/go-kratos/kratos/v2/log"
)

// KratosLogger adapts slog to Kratos' logger, so the framework's own lines
// ("[HTTP] server listening on ...") come out as the same JSON.
type KratosLogger struct{ L *slog.Logger }

var _ klog.Logger = KratosLogger{}

// Log implements klog.Logger.
func (k KratosLogger) Log(level klog.Level, keyvals ...any) error {
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
