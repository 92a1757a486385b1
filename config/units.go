package config

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// String gives the duration in the form the config accepts, with zero
// minutes and seconds left off ("1m", "2h30m") so it reads as written.
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalYAML writes the human form, so a dumped config loads again.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON writes the human form rather than nanoseconds.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// parseDuration accepts what time.ParseDuration does, except negatives:
// no setting in the gateway has a meaning for them.
func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 250ms, 30s, 2m)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return Duration(v), nil
}

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

// sizeUnits maps lowercased unit names to bytes. Decimal units are
// powers of 1000 and binary ones powers of 1024, as their names say;
// the bare letters are the decimal ones, as "kb" is.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
	"ki": kib, "kib": kib, "mi": mib, "mib": mib, "gi": gib, "gib": gib,
}

// sizeNames are tried largest first so String picks the shortest exact
// form; binary before decimal of similar magnitude because buffer sizes
// are mostly powers of two.
var sizeNames = []struct {
	name string
	n    int64
}{
	{"GiB", gib}, {"GB", 1e9}, {"MiB", mib}, {"MB", 1e6}, {"KiB", kib}, {"KB", 1e3},
}

const sizeHint = "want bytes or e.g. 512KB, 10MB, 64KiB, 1GiB"

// parseSize reads a byte count: a plain integer, or a number (decimals
// allowed when the result is whole bytes) followed by a unit, case
// ignored, optionally separated by a space.
func parseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("invalid size %q: must not be negative", s)
	}
	i, dot := 0, -1
	for ; i < len(t); i++ {
		c := t[i]
		if c == '.' && dot < 0 {
			dot = i
			continue
		}
		if c < '0' || c > '9' {
			break
		}
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if num == "" || num[0] == '.' || num[len(num)-1] == '.' {
		return 0, fmt.Errorf("invalid size %q (%s)", s, sizeHint)
	}
	mult, ok := sizeUnits[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (%s)", s, unit, sizeHint)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("invalid size %q (%s)", s, sizeHint)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", s)
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return Size(r.Num().Int64()), nil
}

// String gives the size with the largest unit that divides it exactly,
// or plain bytes.
// ParseSize parses a size as gateway.yaml writes it ("64MiB", "512").
func ParseSize(s string) (Size, error) { return parseSize(s) }

func (s Size) String() string {
	if s != 0 {
		for _, u := range sizeNames {
			if int64(s)%u.n == 0 {
				return strconv.FormatInt(int64(s)/u.n, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalYAML writes the human form, so a dumped config loads again.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON writes the human form, always as a JSON string so the
// field has one type whatever its value.
func (s Size) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }
