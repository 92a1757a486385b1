// Package compress negotiates and applies response compression (gzip,
// brotli, zstd) for the gateway: it decides, per request, which content
// coding a client accepts and the proxy is willing to produce, so that
// cached and proxied responses can be sent compressed without ever
// breaking a client that cannot decode them.
//
// [Negotiate] parses the request's Accept-Encoding field (RFC 9110
// section 12.5.3) and picks a coding. It is a pure function with no
// allocations, so it can run on every request and at cache-key time
// without measurable cost.
//
// [Encoders] hands out pooled encoders per coding and [Level], and
// [NewDecoder] pooled decoders, so a compressed response costs no
// encoder allocation once the pools are warm.
//
// A [Compressor] holds one route's policy ([Options]): which codings are
// offered in which order, at which levels, above which size and for
// which media types. [Compressor.Wrap] is the streaming middleware that
// compresses eligible responses as they are written, decodes
// upstream-compressed ones for clients that cannot take them, and keeps
// ETag, Vary and conditional requests consistent across encodings. A
// cache uses the same policy through [Compressor.Eligible],
// [Compressor.Choose], [Compressor.Encode], [ETag] and [SetEncoding] to
// store objects encoded once and serve them, telling the middleware to
// keep out of the way with [Compressor.PassThrough].
package compress
