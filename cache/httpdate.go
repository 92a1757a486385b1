package cache

import "time"

// ParseHTTPDate parses an HTTP-date exactly as RFC 9110 section 5.6.7
// defines it, in its three forms:
//
//	IMF-fixdate  Sun, 06 Nov 1994 08:49:37 GMT
//	rfc850-date  Sunday, 06-Nov-94 08:49:37 GMT
//	asctime-date Sun Nov  6 08:49:37 1994
//
// http.ParseTime is more lenient (it takes single-digit hours, other zone
// names and any case), and a cache that reads freshness from a date a
// sender got wrong may serve a response far longer than meant: anything
// not in these forms is invalid here, which the callers turn into the
// stricter reading. Names are case-sensitive, spacing is exactly one SP
// (asctime pads a one-digit day with a second SP), the zone is GMT only,
// and the day of the month must exist in that month. The day name is not
// checked against the date: the grammar does not tie them, and no
// freshness decision depends on it. Second 60 (a leap second) is allowed
// by the grammar and read as the next minute's 00.
//
// rfc850's two-digit year is read as RFC 9110 says: the most recent year
// with those digits unless that is more than 50 years in the future,
// relative to the current time.
func ParseHTTPDate(s string) (time.Time, bool) {
	return parseHTTPDate(s, time.Now())
}

// parseHTTPDate is ParseHTTPDate with now, which only the rfc850 year uses.
func parseHTTPDate(s string, now time.Time) (time.Time, bool) {
	switch {
	case len(s) == 29 && s[3] == ',':
		// IMF-fixdate: day-name "," SP 2DIGIT SP month SP 4DIGIT SP time SP "GMT"
		if !isDayName(s[:3]) || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[25:] != " GMT" {
			return time.Time{}, false
		}
		day, ok1 := digits(s[5:7])
		mon, ok2 := month(s[8:11])
		year, ok3 := digits(s[12:16])
		if !ok1 || !ok2 || !ok3 {
			return time.Time{}, false
		}
		return build(year, mon, day, s[17:25])
	case len(s) == 24 && s[3] == ' ':
		// asctime-date: day-name SP month SP ( 2DIGIT / SP DIGIT ) SP time SP 4DIGIT
		if !isDayName(s[:3]) || s[7] != ' ' || s[10] != ' ' || s[19] != ' ' {
			return time.Time{}, false
		}
		mon, ok1 := month(s[4:7])
		var day int
		var ok2 bool
		if s[8] == ' ' {
			day, ok2 = digits(s[9:10])
		} else {
			day, ok2 = digits(s[8:10])
		}
		year, ok3 := digits(s[20:24])
		if !ok1 || !ok2 || !ok3 {
			return time.Time{}, false
		}
		return build(year, mon, day, s[11:19])
	}
	// rfc850-date: day-name-l "," SP 2DIGIT "-" month "-" 2DIGIT SP time SP "GMT"
	comma := -1
	for i := 0; i < len(s) && i < 10; i++ {
		if s[i] == ',' {
			comma = i
			break
		}
	}
	if comma < 0 || !isLongDayName(s[:comma]) {
		return time.Time{}, false
	}
	r := s[comma+1:]
	if len(r) != 23 || r[0] != ' ' || r[3] != '-' || r[7] != '-' || r[10] != ' ' || r[19:] != " GMT" {
		return time.Time{}, false
	}
	day, ok1 := digits(r[1:3])
	mon, ok2 := month(r[4:7])
	yy, ok3 := digits(r[8:10])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	cur := now.UTC().Year()
	year := cur/100*100 + yy
	switch {
	case year > cur+50:
		year -= 100
	case year+100 <= cur+50:
		year += 100
	}
	return build(year, mon, day, r[11:19])
}

// build checks time-of-day ("HH:MM:SS") and the calendar, and makes the
// UTC time.
func build(year int, mon time.Month, day int, tod string) (time.Time, bool) {
	if tod[2] != ':' || tod[5] != ':' {
		return time.Time{}, false
	}
	h, ok1 := digits(tod[0:2])
	m, ok2 := digits(tod[3:5])
	sec, ok3 := digits(tod[6:8])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 60 {
		return time.Time{}, false
	}
	// The first day of the next month minus one day is the month's last.
	if day < 1 || day > time.Date(year, mon+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return time.Time{}, false
	}
	return time.Date(year, mon, day, h, m, sec, 0, time.UTC), true
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func month(s string) (time.Month, bool) {
	for i, m := range months {
		if s == m {
			return time.Month(i + 1), true
		}
	}
	return 0, false
}

func isDayName(s string) bool {
	switch s {
	case "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun":
		return true
	}
	return false
}

func isLongDayName(s string) bool {
	switch s {
	case "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday":
		return true
	}
	return false
}
