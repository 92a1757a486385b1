// Package dashboard is the admin listener's live page (/ui/): the page
// itself, built into the binary, and the data it reads, sampled once a
// second from the metrics registry and the admin Backend only while a
// page is watching (snapshot.go is the JSON's shape).
package dashboard
