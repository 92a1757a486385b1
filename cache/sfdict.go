package cache

// A parser for Structured Field Dictionaries (RFC 8941 section 3.2, parsed
// as section 4.2.2 says), which is what targeted cache-control fields are
// (RFC 9213 section 2.1). It is exact: any deviation fails the whole
// field, as RFC 8941 requires, and RFC 9213 section 2.2 then has the cache
// ignore the field. Parameters are parsed (they must be well formed) and
// dropped, since no cache directive defines any; inner lists are parsed
// and kept only as a kind, so that a directive given one is seen to have
// the wrong type.

// sfKind is the type of a dictionary member's value.
type sfKind uint8

const (
	sfInteger sfKind = iota + 1
	sfDecimal
	sfString
	sfToken
	sfBinary
	sfBoolean
	sfInnerList
)

// sfValue is a member value. Only what cache directives use is kept:
// integers, booleans, strings and tokens.
type sfValue struct {
	kind sfKind
	i    int64
	b    bool
	s    string
}

// sfMember is one dictionary member.
type sfMember struct {
	key string
	val sfValue
}

// maxSFMembers bounds the work one field may cause; a longer dictionary
// is a parse failure, which makes the cache fall back to Cache-Control.
const maxSFMembers = 64

// parseSFDictionary parses s, the field lines joined with ",". Duplicate
// keys keep the last value in the first key's position (section 4.2.2).
// It reports false on any parse error.
func parseSFDictionary(s string) ([]sfMember, bool) {
	p := sfParser{s: s}
	p.sp()
	var out []sfMember
	for p.i < len(p.s) {
		key, ok := p.key()
		if !ok {
			return nil, false
		}
		var v sfValue
		if p.peek('=') {
			p.i++
			if p.peek('(') {
				if !p.innerList() {
					return nil, false
				}
				v = sfValue{kind: sfInnerList}
			} else if v, ok = p.bareItem(); !ok {
				return nil, false
			}
		} else {
			v = sfValue{kind: sfBoolean, b: true}
		}
		if !p.params() {
			return nil, false
		}
		if j := indexMember(out, key); j >= 0 {
			out[j].val = v
		} else {
			if len(out) == maxSFMembers {
				return nil, false
			}
			out = append(out, sfMember{key, v})
		}
		p.ows()
		if p.i == len(p.s) {
			return out, true
		}
		if !p.peek(',') {
			return nil, false
		}
		p.i++
		p.ows()
		if p.i == len(p.s) {
			return nil, false // trailing comma
		}
	}
	return out, true
}

func indexMember(ms []sfMember, key string) int {
	for j := range ms {
		if ms[j].key == key {
			return j
		}
	}
	return -1
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) peek(c byte) bool { return p.i < len(p.s) && p.s[p.i] == c }

func (p *sfParser) sp() {
	for p.peek(' ') {
		p.i++
	}
}

func (p *sfParser) ows() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// key is ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ).
func (p *sfParser) key() (string, bool) {
	start := p.i
	if p.i >= len(p.s) || !(isLCAlpha(p.s[p.i]) || p.s[p.i] == '*') {
		return "", false
	}
	for p.i++; p.i < len(p.s); p.i++ {
		c := p.s[p.i]
		if !(isLCAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
	}
	return p.s[start:p.i], true
}

// params is *( ";" *SP key [ "=" bare-item ] ), values dropped.
func (p *sfParser) params() bool {
	for p.peek(';') {
		p.i++
		p.sp()
		if _, ok := p.key(); !ok {
			return false
		}
		if p.peek('=') {
			p.i++
			if _, ok := p.bareItem(); !ok {
				return false
			}
		}
	}
	return true
}

// innerList is "(" *SP [ item *( 1*SP item ) *SP ] ")" parameters.
func (p *sfParser) innerList() bool {
	p.i++ // "("
	for {
		p.sp()
		if p.peek(')') {
			p.i++
			return p.params()
		}
		if _, ok := p.bareItem(); !ok || !p.params() {
			return false
		}
		if !p.peek(' ') && !p.peek(')') {
			return false
		}
	}
}

func (p *sfParser) bareItem() (sfValue, bool) {
	if p.i >= len(p.s) {
		return sfValue{}, false
	}
	switch c := p.s[p.i]; {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return p.str()
	case c == '*' || isAlpha(c):
		start := p.i
		for p.i++; p.i < len(p.s) && (isTchar(p.s[p.i]) || p.s[p.i] == ':' || p.s[p.i] == '/'); p.i++ {
		}
		return sfValue{kind: sfToken, s: p.s[start:p.i]}, true
	case c == ':':
		return p.binary()
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			b := p.s[p.i+1] == '1'
			p.i += 2
			return sfValue{kind: sfBoolean, b: b}, true
		}
	}
	return sfValue{}, false
}

// number is an Integer (at most 15 digits) or a Decimal (at most 12
// integer and 1 to 3 fractional digits), section 4.2.4.
func (p *sfParser) number() (sfValue, bool) {
	neg := p.peek('-')
	if neg {
		p.i++
	}
	var n int64
	intDigits, frac, dot := 0, 0, false
	for ; p.i < len(p.s); p.i++ {
		c := p.s[p.i]
		switch {
		case isDigit(c):
			if dot {
				frac++
			} else {
				intDigits++
				n = n*10 + int64(c-'0')
			}
		case c == '.' && !dot && intDigits > 0:
			if intDigits > 12 {
				return sfValue{}, false
			}
			dot = true
			continue
		default:
			goto end
		}
		if (!dot && intDigits > 15) || frac > 3 {
			return sfValue{}, false
		}
	}
end:
	if intDigits == 0 || (dot && frac == 0) {
		return sfValue{}, false
	}
	if dot {
		return sfValue{kind: sfDecimal}, true
	}
	if neg {
		n = -n
	}
	return sfValue{kind: sfInteger, i: n}, true
}

// str is DQUOTE *( unescaped / "\" ( DQUOTE / "\" ) ) DQUOTE, where
// unescaped is printable ASCII other than DQUOTE and "\".
func (p *sfParser) str() (sfValue, bool) {
	p.i++
	var b []byte
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '\\':
			if p.i+1 >= len(p.s) || (p.s[p.i+1] != '"' && p.s[p.i+1] != '\\') {
				return sfValue{}, false
			}
			if b == nil {
				b = append([]byte{}, p.s[start:p.i]...)
			}
			b = append(b, p.s[p.i+1])
			p.i += 2
		case c == '"':
			v := p.s[start:p.i]
			if b != nil {
				v = string(b)
			}
			p.i++
			return sfValue{kind: sfString, s: v}, true
		case c < 0x20 || c > 0x7e:
			return sfValue{}, false
		default:
			if b != nil {
				b = append(b, c)
			}
			p.i++
		}
	}
	return sfValue{}, false
}

// binary is ":" *(base64) ":", base64 with its "=" padding.
func (p *sfParser) binary() (sfValue, bool) {
	p.i++
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != ':' {
		c := p.s[p.i]
		if !(isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '=') {
			return sfValue{}, false
		}
		p.i++
	}
	if p.i >= len(p.s) {
		return sfValue{}, false
	}
	b64 := p.s[start:p.i]
	p.i++
	if len(b64)%4 != 0 {
		return sfValue{}, false
	}
	// "=" only as the last one or two characters.
	for j := 0; j < len(b64); j++ {
		if b64[j] == '=' && j < len(b64)-2 || (b64[j] == '=' && j == len(b64)-2 && b64[j+1] != '=') {
			return sfValue{}, false
		}
	}
	return sfValue{kind: sfBinary}, true
}

func isLCAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || ('A' <= c && c <= 'Z') }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }

// isTchar is RFC 9110's tchar.
func isTchar(c byte) bool {
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return isAlpha(c) || isDigit(c)
}
