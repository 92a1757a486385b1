package cache_test

import (
	"context"
	"net/url"
	"testing"

	"gateway/cache"
)

// TestParsePurge: the admin endpoint's query becomes a Purge, or the
// message the client gets with its 400.
func TestParsePurge(t *testing.T) {
	tests := []struct {
		query   string
		want    cache.Purge
		wantErr string
	}{
		{"url=http://h/p?q=1", cache.Purge{URL: "http://h/p?q=1"}, ""},
		{"prefix=https://h/a/&soft=true", cache.Purge{Prefix: "https://h/a/", Soft: true}, ""},
		{"tag=t1&soft=1", cache.Purge{Tag: "t1", Soft: true}, ""},
		{"all=true&soft=false", cache.Purge{All: true}, ""},
		{"all=1", cache.Purge{All: true}, ""},
		{"", cache.Purge{}, "give exactly one of url, path, prefix, tag or all"},
		{"tag=a&all=true", cache.Purge{}, "give exactly one of url, path, prefix, tag or all"},
		{"tag=a&soft=maybe", cache.Purge{}, "soft: want true or false"},
		{"tag=", cache.Purge{}, "tag: empty"},
		{"all=yes", cache.Purge{}, "all: want true"},
		{"url=/p", cache.Purge{}, "want an absolute http or https URL"},
		{"url=", cache.Purge{}, "want an absolute http or https URL"},
		{"prefix=ftp://h/", cache.Purge{}, "want an absolute http or https URL"},
		{"prefix=http://h/a?x=1", cache.Purge{}, "prefix: a prefix has no query"},
		{"path=/x?a=1", cache.Purge{Path: "/x?a=1"}, ""},
		{"path=/x&route=api&soft=1", cache.Purge{Path: "/x", Route: "api", Soft: true}, ""},
		{"prefix=/css/&route=static", cache.Purge{Prefix: "/css/", Route: "static"}, ""},
		{"path=x", cache.Purge{}, "want a path starting with / (and, but for a prefix, its query)"},
		{"path=//h/x", cache.Purge{}, "want a path starting with / (and, but for a prefix, its query)"},
		{"path=", cache.Purge{}, "want a path starting with / (and, but for a prefix, its query)"},
		{"prefix=/css/?v=1", cache.Purge{}, "prefix: a prefix has no query"},
		{"path=/x&url=http://h/x", cache.Purge{}, "give exactly one of url, path, prefix, tag or all"},
		{"url=http://h/x&route=api", cache.Purge{}, "route: narrows only a purge by path or by a prefix starting with /"},
		{"path=/x&route=", cache.Purge{}, "route: empty"},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		got, err := cache.ParsePurge(q)
		var msg string
		if err != nil {
			msg = err.Error()
		}
		if got != tt.want || msg != tt.wantErr {
			t.Errorf("ParsePurge(%q): got %+v, %q; want %+v, %q", tt.query, got, msg, tt.want, tt.wantErr)
		}
	}
}

// TestPurgeChecks: Purge refuses what ParsePurge would, and purges nothing.
func TestPurgeChecks(t *testing.T) {
	c, err := cache.New(cache.Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range []cache.Purge{
		{},
		{Tag: "a", All: true},
		{URL: "/relative"},
		{Prefix: "http://h/a?x=1"},
	} {
		if n, err := c.Purge(context.Background(), p); err == nil {
			t.Errorf("Purge(%+v): got %d, nil; want an error", p, n)
		}
	}
	if n, err := c.Purge(context.Background(), cache.Purge{All: true}); n != 0 || err != nil {
		t.Errorf("Purge(all) on an empty cache: got %d, %v; want 0, nil", n, err)
	}
}
