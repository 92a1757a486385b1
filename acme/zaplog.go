package acme

import (
	"context"
	"log/slog"
	"math"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapLogger is a zap logger (certmagic's) that writes to log, so that
// certmagic's events land in the gateway's log, in its format, filtered
// by its level.
func zapLogger(log *slog.Logger) *zap.Logger {
	return zap.New(&slogCore{log: log})
}

// slogCore is a zapcore.Core over a slog.Logger.
type slogCore struct {
	log   *slog.Logger
	attrs []slog.Attr // from With
}

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return c.log.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fs []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log, attrs: append(c.attrs[:len(c.attrs):len(c.attrs)], attrs(fs)...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	as := make([]slog.Attr, 0, len(c.attrs)+len(fs)+1)
	if e.LoggerName != "" {
		as = append(as, slog.String("component", "certmagic."+e.LoggerName))
	} else {
		as = append(as, slog.String("component", "certmagic"))
	}
	as = append(as, c.attrs...)
	as = append(as, attrs(fs)...)
	c.log.LogAttrs(context.Background(), slogLevel(e.Level), e.Message, as...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

// attrs turns zap fields into slog attributes, through zap's own map
// encoder so that every field type is rendered as zap would.
func attrs(fs []zapcore.Field) []slog.Attr {
	if len(fs) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fs {
		f.AddTo(enc)
	}
	out := make([]slog.Attr, 0, len(enc.Fields))
	for _, f := range fs {
		v, ok := enc.Fields[f.Key]
		if !ok {
			continue
		}
		switch v := v.(type) {
		case time.Duration:
			out = append(out, slog.String(f.Key, v.String()))
		case float64:
			if math.IsInf(v, 0) || math.IsNaN(v) {
				out = append(out, slog.String(f.Key, "NaN"))
				continue
			}
			out = append(out, slog.Any(f.Key, v))
		default:
			out = append(out, slog.Any(f.Key, v))
		}
	}
	return out
}
