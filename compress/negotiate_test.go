package compress

import (
	"math"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var all = DefaultPreference

type negotiateCase struct {
	name   string
	header []string // nil: no Accept-Encoding field
	offer  []string
	want   string
	wantOK bool
}

var negotiateCases = []negotiateCase{
	// Absent and empty fields.
	{"absent", nil, all, Identity, true},
	{"absent empty slice", []string{}, all, Identity, true},
	{"empty value", []string{""}, all, Identity, true},
	{"blank value", []string{"  \t "}, all, Identity, true},
	{"only commas", []string{", ,,"}, all, Identity, true},

	// Common clients.
	{"chrome", []string{"gzip, deflate, br, zstd"}, all, Brotli, true},
	{"firefox", []string{"gzip, deflate, br"}, all, Brotli, true},
	{"safari", []string{"gzip, deflate"}, all, Gzip, true},
	{"go client", []string{"gzip"}, all, Gzip, true},
	{"deflate only", []string{"deflate"}, all, Identity, true},
	{"identity", []string{"identity"}, all, Identity, true},
	{"star", []string{"*"}, all, Brotli, true},
	{"star custom order", []string{"*"}, []string{Gzip, Zstd}, Gzip, true},

	// Refusals.
	{"gzip q0", []string{"gzip;q=0"}, all, Identity, true},
	{"star q0", []string{"*;q=0"}, all, Identity, false},
	{"star q0 identity", []string{"*;q=0, identity"}, all, Identity, true},
	{"star q0 gzip", []string{"*;q=0, gzip"}, all, Gzip, true},
	{"identity q0", []string{"identity;q=0"}, all, Identity, false},
	{"identity q0 gzip", []string{"identity;q=0, gzip"}, all, Gzip, true},
	{"identity q0 gzip not offered", []string{"identity;q=0, gzip"}, []string{Brotli}, Identity, false},
	{"identity q0 star", []string{"identity;q=0, *"}, all, Brotli, true},
	{"identity q0 star q0", []string{"identity;q=0, *;q=0"}, all, Identity, false},
	{"identity q0 empty offer", []string{"identity;q=0"}, nil, Identity, false},
	{"identity q0.000", []string{"identity;q=0.000"}, all, Identity, false},
	{"all refused", []string{"br;q=0, gzip;q=0, zstd;q=0, identity;q=0"}, all, Identity, false},

	// Weights.
	{"weights", []string{"br;q=1.0, gzip;q=0.8, *;q=0.1"}, all, Brotli, true},
	{"weights gzip first", []string{"br;q=0.5, gzip;q=0.8"}, all, Gzip, true},
	{"star weights unlisted", []string{"gzip;q=0.5, *;q=0.9"}, all, Brotli, true},
	{"star beats listed identity lower", []string{"identity;q=0.2, *;q=0.3"}, []string{Gzip}, Gzip, true},
	{"identity beats gzip", []string{"gzip;q=0.5, identity"}, all, Identity, true},
	{"identity higher via star", []string{"gzip;q=0.5, *"}, []string{Gzip}, Identity, true},
	{"gzip identity tie", []string{"gzip, identity"}, all, Gzip, true},
	{"identity gzip tie", []string{"identity, gzip"}, all, Gzip, true},
	{"implicit identity loses", []string{"gzip;q=0.001"}, all, Gzip, true},
	{"explicit identity tie 0.001", []string{"identity;q=0.001, gzip;q=0.001"}, all, Gzip, true},
	{"three decimals", []string{"gzip;q=0.501, br;q=0.5"}, all, Gzip, true},
	{"q 1.000", []string{"gzip;q=1.000, br;q=0.999"}, all, Gzip, true},
	{"q 1.", []string{"gzip;q=1., br;q=0.9"}, all, Gzip, true},
	{"q 0.", []string{"gzip;q=0."}, all, Identity, true},
	{"uppercase Q", []string{"gzip;Q=0.1, br;q=0.2"}, all, Brotli, true},

	// Ties broken by the server's order.
	{"tie default", []string{"gzip, zstd, br"}, all, Brotli, true},
	{"tie custom", []string{"br, zstd, gzip"}, []string{Gzip, Zstd, Brotli}, Gzip, true},
	{"tie custom 2", []string{"br;q=0.5, zstd;q=0.5, gzip;q=0.4"}, []string{Zstd, Brotli}, Zstd, true},

	// Offers.
	{"offer missing br", []string{"br, gzip"}, []string{Zstd, Gzip}, Gzip, true},
	{"offer missing all", []string{"br"}, []string{Gzip}, Identity, true},
	{"empty offer", []string{"gzip, br"}, nil, Identity, true},
	{"offer with identity", []string{"gzip;q=0.5"}, []string{Identity, Gzip}, Gzip, true},
	{"offer unknown", []string{"deflate, gzip"}, []string{"deflate", Gzip}, Gzip, true},
	{"offer case", []string{"gzip"}, []string{"GZIP"}, Gzip, true},
	{"offer duplicates", []string{"gzip, br"}, []string{Gzip, Brotli, Gzip}, Gzip, true},

	// Spelling.
	{"x-gzip", []string{"x-gzip"}, all, Gzip, true},
	{"X-GZIP", []string{"X-GZIP;q=0.5"}, all, Gzip, true},
	{"case", []string{"GZip, BR"}, all, Brotli, true},
	{"case identity", []string{"IDENTITY;Q=0"}, all, Identity, false},
	{"spaces", []string{"  gzip ; q=0.5 ,\tbr\t;\tq=0.4  "}, all, Gzip, true},
	{"other params ignored", []string{"gzip;level=9;q=0.5, br;foo=\"a,b;q=1\";q=0.1"}, all, Gzip, true},

	// Duplicates: first occurrence wins.
	{"dup first wins", []string{"gzip;q=0, gzip"}, []string{Gzip}, Identity, true},
	{"dup later refusal wins", []string{"gzip, gzip;q=0"}, []string{Gzip}, Identity, true},
	{"dup later refusal by alias", []string{"gzip, x-gzip;q=0"}, []string{Gzip}, Identity, true},
	{"dup later star refusal", []string{"*, br;q=0.5, *;q=0"}, all, Brotli, true},
	{"dup alias", []string{"x-gzip;q=0, gzip"}, []string{Gzip}, Identity, true},
	{"dup across lines", []string{"br;q=0.1", "br, gzip;q=0.5"}, all, Gzip, true},

	// Multiple field lines.
	{"two lines", []string{"gzip", "br"}, all, Brotli, true},
	{"two lines refuse", []string{"gzip", "identity;q=0"}, []string{Brotli}, Identity, false},
	{"empty line then coding", []string{"", "zstd"}, all, Zstd, true},

	// Empty elements.
	{"empty elements", []string{", , gzip"}, all, Gzip, true},
	{"trailing comma", []string{"gzip,"}, all, Gzip, true},

	// Malformed: whole header falls back to identity, never an error.
	{"q=2", []string{"gzip;q=2"}, all, Identity, true},
	{"q=0.1234", []string{"gzip;q=0.1234"}, all, Identity, true},
	{"q=abc", []string{"gzip;q=abc"}, all, Identity, true},
	{"q=", []string{"gzip;q="}, all, Identity, true},
	{"q=.5", []string{"gzip;q=.5"}, all, Identity, true},
	{"q=1.001", []string{"gzip;q=1.001"}, all, Identity, true},
	{"q=-0", []string{"gzip;q=-0"}, all, Identity, true},
	{"q=01", []string{"gzip;q=01"}, all, Identity, true},
	{"q=1e0", []string{"gzip;q=1e0"}, all, Identity, true},
	{"q quoted", []string{"gzip;q=\"0.5\""}, all, Identity, true},
	{"q twice", []string{"gzip;q=0.5;q=1"}, all, Identity, true},
	{"q space before =", []string{"gzip;q =0.5"}, all, Identity, true},
	{"q space after =", []string{"gzip;q= 0.5"}, all, Identity, true},
	{"malformed poisons good", []string{"br, gzip;q=2"}, all, Identity, true},
	{"malformed poisons refusal", []string{"identity;q=0, gzip;q=x"}, []string{Brotli}, Identity, true},
	{"malformed other line", []string{"br", "gzip;q=abc"}, all, Identity, true},
	{"garbage", []string{"@@@"}, all, Identity, true},
	{"garbage element", []string{"br, gz ip"}, all, Identity, true},
	{"bare semicolon", []string{"gzip;"}, all, Identity, true},
	{"param no value", []string{"br;q"}, all, Identity, true},
	{"param empty name", []string{"br;=1"}, all, Identity, true},
	{"leading semicolon", []string{";q=1, br"}, all, Identity, true},
	{"unterminated quote", []string{"br;x=\"abc"}, all, Identity, true},
	{"control char", []string{"br\x00"}, all, Identity, true},
	{"non-ascii", []string{"brötli, br"}, all, Identity, true},
	{"newline", []string{"br\r\n"}, all, Identity, true},

	// Bounded work.
	{"over the cap: identity", []string{strings.Repeat("deflate, ", maxElements) + "br"}, all, Identity, true},
	{"over the cap: identity, malformed rest", []string{strings.Repeat("gzip, ", maxElements) + "br;q=9"}, all, Identity, true},
	{"over the cap: refusals past it", []string{"*, " + xs(1, maxElements-1) + ", gzip;q=0, br;q=0, zstd;q=0"}, all, Identity, true},
	{"over the cap across lines", []string{"br, " + xs(1, maxElements-1), "br;q=0"}, all, Identity, true},
	{"cap counts non-empty", []string{strings.Repeat(",", 100) + "br"}, all, Brotli, true},
	{"cap just inside", []string{strings.Repeat("deflate, ", maxElements-1) + "br"}, all, Brotli, true},
	{"cap just inside, refusal last", []string{"*, " + xs(1, maxElements-3) + ", br;q=0"}, all, Zstd, true},
}

// xs lists the made-up codings x<from>..x<to>, as a client padding its
// header might.
func xs(from, to int) string {
	var b []string
	for i := from; i <= to; i++ {
		b = append(b, "x"+strconv.Itoa(i))
	}
	return strings.Join(b, ", ")
}

func TestNegotiate(t *testing.T) {
	for _, tc := range negotiateCases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Negotiate(tc.header, tc.offer)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("Negotiate(%q, %q) = %q, %v; want %q, %v", tc.header, tc.offer, got, ok, tc.want, tc.wantOK)
			}
			// The reference must agree wherever it understands the header.
			if rc, rok, wf := referenceNegotiate(tc.header, tc.offer); wf && (rc != got || rok != ok) {
				t.Errorf("reference(%q, %q) = %q, %v; Negotiate = %q, %v", tc.header, tc.offer, rc, rok, got, ok)
			}
		})
	}
}

func TestNegotiateNoAlloc(t *testing.T) {
	for _, h := range []string{"gzip, deflate, br, zstd", "br;q=1.0, gzip;q=0.8, *;q=0.1", "br;x=\"y\";q=0.5, gzip;q=abc"} {
		hdr := []string{h}
		if n := testing.AllocsPerRun(100, func() { Negotiate(hdr, DefaultPreference) }); n != 0 {
			t.Errorf("Negotiate(%q) allocates %v times; want 0", h, n)
		}
	}
}

func TestParseQ(t *testing.T) {
	for s, want := range map[string]int{"0": 0, "1": 1000, "0.5": 500, "0.05": 50, "0.005": 5, "0.123": 123, "1.0": 1000, "1.000": 1000, "0.": 0, "1.": 1000} {
		if got, ok := parseQ(s); !ok || got != want {
			t.Errorf("parseQ(%q) = %d, %v; want %d, true", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "2", "0.1234", "abc", ".5", "1.1", "00", "0.5.", "0,5", "1e0", "+1", "-0"} {
		if got, ok := parseQ(s); ok {
			t.Errorf("parseQ(%q) = %d, true; want malformed", s, got)
		}
	}
}

func BenchmarkNegotiate(b *testing.B) {
	for _, h := range []string{"gzip, deflate, br, zstd", "br;q=1.0, gzip;q=0.8, *;q=0.1"} {
		hdr := []string{h}
		b.Run(h, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Negotiate(hdr, DefaultPreference)
			}
		})
	}
}

func FuzzNegotiate(f *testing.F) {
	for _, tc := range negotiateCases {
		h1, h2, lines := "", "", uint8(len(tc.header))
		if len(tc.header) > 0 {
			h1 = tc.header[0]
		}
		if len(tc.header) > 1 {
			h2 = tc.header[1]
		}
		f.Add(h1, h2, lines, strings.Join(tc.offer, ","))
	}
	f.Fuzz(func(t *testing.T, h1, h2 string, lines uint8, offerSpec string) {
		header := []string{h1, h2}[:lines%3]
		var offer []string
		if offerSpec != "" {
			offer = strings.Split(offerSpec, ",")
		}
		got, ok := Negotiate(header, offer)

		// Always identity or a canonical form of something offered.
		valid := got == Identity
		for _, o := range offer {
			if i := codingIndex(o); i >= idxGzip && i <= idxZstd && names[i] == got {
				valid = true
			}
		}
		if !valid {
			t.Fatalf("Negotiate(%q, %q) = %q, not offered", header, offer, got)
		}
		if !ok && got != Identity {
			t.Fatalf("Negotiate(%q, %q) = %q, false; want identity when refusing", header, offer, got)
		}

		// Never a coding the client refused, wherever the refusal is,
		// judged by a literal scan of every element.
		if got != Identity && refRefused(header, got) {
			t.Fatalf("Negotiate(%q, %q) = %q, which the header refuses with q=0", header, offer, got)
		}

		rc, rok, wf := referenceNegotiate(header, offer)
		if !wf {
			return
		}
		if rc != got || rok != ok {
			t.Fatalf("Negotiate(%q, %q) = %q, %v; reference says %q, %v", header, offer, got, ok, rc, rok)
		}
		// A well-formed, present header must actually accept the choice;
		// absent and malformed headers fall back to identity by design.
		_, wellFormed, _ := refParse(header)
		if ok && len(header) > 0 && wellFormed && refWeight(header, got) <= 0 && !(got == Identity && refIdentityImplicit(header)) {
			t.Fatalf("Negotiate(%q, %q) = %q, which the client does not accept", header, offer, got)
		}
	})
}

// The reference implementation below is deliberately slow and literal:
// strings.Split, a regexp for the qvalue grammar and strconv.ParseFloat.
// It does not handle quoted strings (a comma inside quotes would confuse
// Split), so it reports wellFormed=false for any header containing '"'
// and the comparison is skipped.

var (
	refQvalue = regexp.MustCompile(`^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$`)
	refToken  = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
)

// refParse returns the weight of each coding (lowercased, x-gzip folded
// into gzip), first occurrence winning, and whether the header is well
// formed. ok=false with known=false means the reference cannot judge.
func refParse(header []string) (weights map[string]float64, wellFormed, known bool) {
	weights = map[string]float64{}
	n := 0
	for _, line := range header {
		if strings.Contains(line, `"`) {
			return nil, false, false
		}
		for _, elem := range strings.Split(line, ",") {
			elem = strings.Trim(elem, " \t")
			if elem == "" {
				continue
			}
			if n == maxElements {
				return nil, false, true // too long: malformed
			}
			n++
			parts := strings.Split(elem, ";")
			name := strings.ToLower(strings.Trim(parts[0], " \t"))
			if !refToken.MatchString(name) {
				return nil, false, true
			}
			if name == "x-gzip" {
				name = "gzip"
			}
			q, seenQ := 1.0, false
			for _, p := range parts[1:] {
				p = strings.Trim(p, " \t")
				k, v, found := strings.Cut(p, "=")
				if !found || !refToken.MatchString(k) || !refToken.MatchString(v) {
					return nil, false, true
				}
				if strings.ToLower(k) != "q" {
					continue
				}
				if seenQ || !refQvalue.MatchString(v) {
					return nil, false, true
				}
				seenQ = true
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f < 0 || f > 1 {
					return nil, false, true
				}
				q = f
			}
			if _, dup := weights[name]; !dup || q == 0 {
				weights[name] = q
			}
		}
	}
	return weights, true, true
}

// refRefused reports whether any element of the header, however far
// down, gives coding (or x-gzip for gzip) q=0, or gives "*" q=0 while
// coding is not listed. It does not stop at maxElements nor at malformed
// elements; headers with quoted strings, which Split cannot cut right,
// are not judged.
func refRefused(header []string, coding string) bool {
	listed, starRefused := false, false
	for _, line := range header {
		if strings.Contains(line, `"`) {
			return false
		}
		for _, elem := range strings.Split(line, ",") {
			parts := strings.Split(elem, ";")
			name := strings.ToLower(strings.Trim(parts[0], " \t"))
			if name == "x-gzip" {
				name = Gzip
			}
			zero := false
			for _, p := range parts[1:] {
				k, v, _ := strings.Cut(strings.Trim(p, " \t"), "=")
				if strings.EqualFold(k, "q") {
					if f, err := strconv.ParseFloat(v, 64); err == nil && f == 0 {
						zero = true
					}
				}
			}
			switch name {
			case coding:
				listed = true
				if zero {
					return true
				}
			case "*":
				starRefused = starRefused || zero
			}
		}
	}
	return starRefused && !listed
}

// refWeight is the client's weight for coding: explicit entry, else "*",
// else 0 (identity's implicit acceptability is handled separately).
func refWeight(header []string, coding string) float64 {
	w, wf, _ := refParse(header)
	if !wf {
		return 0
	}
	if q, ok := w[coding]; ok {
		return q
	}
	return w["*"]
}

func refIdentityImplicit(header []string) bool {
	w, wf, _ := refParse(header)
	if !wf {
		return false
	}
	_, id := w["identity"]
	_, star := w["*"]
	return !id && !star
}

// referenceNegotiate mirrors Negotiate's documented rules. wellFormed is
// false when the reference cannot judge the header (quoted strings).
func referenceNegotiate(header []string, offer []string) (coding string, ok, wellFormed bool) {
	if len(header) == 0 {
		return Identity, true, true
	}
	_, wf, known := refParse(header)
	if !known {
		return "", false, false
	}
	if !wf {
		return Identity, true, true
	}
	type cand struct {
		name string
		q    float64
		rank int
	}
	var cands []cand
	seen := map[string]bool{}
	for i, o := range offer {
		o = strings.ToLower(o)
		if o == "x-gzip" {
			o = "gzip"
		}
		if (o != Gzip && o != Brotli && o != Zstd) || seen[o] {
			continue
		}
		seen[o] = true
		cands = append(cands, cand{o, refWeight(header, o), i})
	}
	idQ := refWeight(header, Identity)
	if refIdentityImplicit(header) {
		idQ = 0.0005 // below any expressible qvalue, above refusal
	}
	cands = append(cands, cand{Identity, idQ, math.MaxInt})
	best := cands[0]
	for _, c := range cands[1:] {
		if c.q > best.q || (c.q == best.q && c.rank < best.rank) {
			best = c
		}
	}
	if best.q <= 0 {
		return Identity, false, true
	}
	return best.name, true, true
}

// TestChooseRemembers: Choose, which remembers its answers per
// Accept-Encoding value, answers every case as Negotiate does, also when
// the values come again, interleaved, and share its slots.
func TestChooseRemembers(t *testing.T) {
	c := mustNew(t, Options{})
	want := func(h []string) string {
		got, _ := Negotiate(h, all)
		if got == Identity {
			return ""
		}
		return got
	}
	for round := range 3 {
		for _, tc := range negotiateCases {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.header != nil {
				r.Header["Accept-Encoding"] = tc.header
			}
			if got, w := c.Choose(r), want(tc.header); got != w {
				t.Errorf("round %d, %s: Choose %q; want %q", round, tc.name, got, w)
			}
		}
	}
}
