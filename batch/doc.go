// Package batch serves many requests in one: the batching endpoint
// (Handler) and composite routes (Composite). Both run their
// sub-requests in-process through the gateway's own handler, so every
// sub-request is routed, limited, cached and collapsed exactly as if a
// client had sent it, and costs no socket.
//
// # In-process sub-requests
//
// A sub-request is a synthetic *http.Request with the outer request's
// context (server, connection, cancellation), peer address, TLS state
// and protocol version, served into an in-memory ResponseWriter whose
// Flush does nothing. It never carries Accept-Encoding, so bodies come
// back uncompressed (the compression stage decodes an upstream-compressed
// one for such a request). X-Forwarded-For, -Host, -Proto, Forwarded
// and Via come from the outer request, so the proxy trusts or replaces
// them by the same peer test as for the outer request. X-Request-Id is
// the outer request's id with the sub-request's position appended
// ("id.2": the second item or part), so each upstream exchange has an id
// of its own that still leads to the client's request. A
// panic in the handler is contained to its sub-request. Each body is
// bounded (MaxResponseSize, MaxPartSize); past that the sub-request is
// cut and fails with 502. A batch's bodies are all held until it is
// answered, so they are bounded together too (MaxTotalResponseSize): an
// item whose body would take the batch past it is cut and fails with
// 502 {"error": "batch response too large: ..."}, while the items
// before it keep theirs; a body not kept (its item failed) frees its
// share. The answer is written item by item, each body dropped once
// written.
//
// # Batches
//
// A batch is POSTed as
//
//	{"requests": [{"id": "a", "method": "GET", "path": "/users/1",
//	  "host": "api.example.com", "headers": {"Accept": "application/json"},
//	  "body": {...} | "body_base64": "..."}]}
//
// and answered 200 with the responses in request order:
//
//	{"responses": [{"id": "a", "status": 200, "headers": {...}, "body": {...}}]}
//
// A response body that is JSON (application/json or +json, no content
// coding, valid) is embedded as "body"; any other non-empty body is
// "body_base64". Response fields are one string each: repeated lines
// joined with ", ", Set-Cookie lines with "\n".
//
// Items run concurrently, at most Concurrency at a time, each with its
// own ItemTimeout from its start. An item's failure is its own: a proxy
// error keeps its status (502, 503, 504), an item past its timeout gets
// 504 {"error": "timeout"}, an item no route takes 404 {"error": "no
// route"}, or 405 {"error": "method not allowed"} with the Allow header
// when routes take its path in other methods (as when sent alone), an
// item whose route is not batchable 403 {"error": "route not
// batchable"}; the batch still answers 200.
//
// The batch as a whole is refused, before any item runs, with
// {"error": "...", "item": N, "id": "..."} (item and id when one item is
// at fault): 413 for a body over MaxBodySize or more than MaxItems
// items; 400 for malformed JSON, text that is not UTF-8 (or a \u escape
// of half a surrogate pair), a field or header given twice in one object
// (names compared ignoring case; an item's body is sent as written and
// not looked into), unknown fields at any level, a missing or duplicate
// id, a missing path or one not starting with "/", a method
// other than GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS (the
// default is GET), a path that is the batch path itself ("a batch may
// not contain a batch"), both body and body_base64, and item headers
// that are hop-by-hop (Connection, Keep-Alive, Transfer-Encoding,
// Upgrade, TE, Trailer, Proxy-*) or the gateway's own (X-Forwarded-*,
// Forwarded, Via, X-Request-Id, Host, Content-Length). Accept-Encoding in
// an item is dropped. A "body" JSON value is sent with Content-Type
// application/json unless the item names another; "body": null is no
// body.
//
// Headers named in InheritHeaders are copied from the outer request to
// every item. For those names the outer request wins: when it has the
// field, its value replaces the item's; when it does not, the item's own
// value is kept. An item's Host is the outer request's unless the item
// names one in "host".
//
// # Composites
//
// A composite route has parts instead of an upstream; see Composite. It
// answers GET and HEAD with one JSON object, each part's JSON body under
// its key. A part fails when it answers other than 2xx, with a body that
// is not JSON, or not in time. With OnErrorFail any failure answers 502
// {"error": "part K failed: ...", "part": "K", "status": N, "errors":
// {...}}; with OnErrorOmit failed parts are left out and listed under
// "errors" ({"K": {"status": N, "error": "..."}}), and only when every
// part failed is the answer 502. A composite whose parts reach itself
// answers 508, as does nesting deeper than four composites.
package batch
