package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the config file at path, then parses and validates it as
// Parse does.
func Load(path string, checks ...Check) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, checks...)
}

// Parse decodes data, expands environment references, applies defaults
// and validates the result: the file's own checks, then checks, whose
// problems join the file's. file names the source in messages and in
// Config.File. On failure the error is an Errors listing every problem,
// and the Config is nil.
//
// Without checks the options of the runtime packages are not checked;
// package app's Load and Parse pass the check that does.
func Parse(file string, data []byte, checks ...Check) (*Config, error) {
	d := newDecoder(file)
	root, ok := d.parseYAML(data)
	if !ok {
		return nil, d.result()
	}
	c := &Config{File: file}
	d.decodeRoot(root, c)
	if d.exhausted {
		return nil, d.result()
	}
	applyDefaults(c, d)
	validate(c, d)
	for _, check := range checks {
		check(c, &Reporter{d})
	}
	normalize(c)
	if err := d.result(); err != nil {
		return nil, err
	}
	return c, nil
}

const (
	// maxSteps bounds the nodes visited, since aliases let a small file
	// describe an exponentially large tree. A config with thousands of
	// routes stays well below it.
	maxSteps = 1 << 18
	// maxErrors keeps a badly broken file (or the wrong file) from
	// flooding the terminal; the first hundred problems are enough to
	// start on.
	maxErrors = 100
	mergeTag  = "!!merge"
	nullTag   = "!!null"
)

// decoder walks the YAML tree against the Config types and collects
// every problem instead of stopping at the first.
type decoder struct {
	file string
	errs Errors
	seen map[Error]bool // drops repeats, e.g. from one anchor used twice
	more bool           // errors were dropped

	// lines holds the line of every field path, those absent from the
	// file included (the line of their nearest present parent), so that
	// validation and defaults can point at the right place.
	lines map[string]int
	// set holds the paths given a non-empty value, so that an explicit
	// zero ("max_fails: 0") is not replaced by a default.
	set map[string]bool
	// bad holds the paths whose value was rejected, so that validation
	// does not pile a derived complaint on top.
	bad map[string]bool

	steps     int
	exhausted bool
}

func newDecoder(file string) *decoder {
	return &decoder{
		file:  file,
		seen:  map[Error]bool{},
		lines: map[string]int{},
		set:   map[string]bool{},
		bad:   map[string]bool{},
	}
}

// fail records a problem with the value at path.
func (d *decoder) fail(line int, path, msg string) {
	d.bad[path] = true
	d.add(line, path, msg)
}

func (d *decoder) add(line int, path, msg string) {
	e := Error{File: d.file, Line: line, Field: path, Msg: msg}
	if d.seen[e] {
		return
	}
	d.seen[e] = true
	if len(d.errs) >= 10*maxErrors {
		// Only the first maxErrors by line are shown; keeping a few more
		// than that bounds memory on hostile input.
		d.more = true
		return
	}
	d.errs = append(d.errs, &e)
}

func (d *decoder) failf(line int, path, format string, args ...any) {
	d.fail(line, path, fmt.Sprintf(format, args...))
}

// report records a validation problem at path unless the decoder has
// already rejected the value at path or at a parent of it: validating
// what is left after a rejected value only yields derived complaints.
func (d *decoder) report(path, format string, args ...any) {
	for p := path; ; p = parentPath(p) {
		if d.bad[p] {
			return
		}
		if p == "" {
			break
		}
	}
	d.add(d.line(path), path, fmt.Sprintf(format, args...))
}

// line is the line of path or, failing that, of its nearest known
// parent.
func (d *decoder) line(path string) int {
	for {
		if l, ok := d.lines[path]; ok && l > 0 {
			return l
		}
		if path == "" {
			return 1
		}
		path = parentPath(path)
	}
}

func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// result is the collected problems, sorted by line, or nil.
func (d *decoder) result() error {
	if len(d.errs) == 0 {
		return nil
	}
	sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
	if len(d.errs) > maxErrors {
		d.errs, d.more = d.errs[:maxErrors], true
	}
	if d.more {
		d.errs = append(d.errs, &Error{File: d.file, Msg: fmt.Sprintf("too many problems; only the first %d are shown", maxErrors)})
	}
	return d.errs
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntax turns a YAML parser error in data into an Error at the line
// of the mistake, with the field before it (syntax.go).
func (d *decoder) syntax(data []byte, err error) {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	e := syntaxError(d.file, data, line, msg)
	d.fail(e.Line, e.Field, e.Msg)
}

// parseYAML reads the single document in data. A nil root with ok set
// means an empty file.
func (d *decoder) parseYAML(data []byte) (root *yaml.Node, ok bool) {
	// The YAML parser has panicked on malformed input in the past; a
	// config file must never take the process down.
	defer func() {
		if r := recover(); r != nil {
			d.failf(0, "", "cannot parse YAML: %v", r)
			root, ok = nil, false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		d.syntax(data, err)
		return nil, false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.fail(extra.Line, "", "a second YAML document; the config is a single document")
	case !errors.Is(err, io.EOF):
		d.syntax(data, err)
	}
	if len(d.errs) > 0 {
		return nil, false
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0], true
	}
	return nil, true
}

func (d *decoder) decodeRoot(root *yaml.Node, c *Config) {
	v := reflect.ValueOf(c).Elem()
	d.lines[""] = 1
	if root == nil {
		d.markAbsent(v.Type(), "", 1)
		return
	}
	if root.Line > 0 {
		d.lines[""] = root.Line
	}
	d.decode(root, v, "")
}

var (
	durationType = reflect.TypeFor[Duration]()
	sizeType     = reflect.TypeFor[Size]()
	rateType     = reflect.TypeFor[Rate]()
)

// decode stores n in v and reports whether it assigned a value: null,
// empty or rejected values leave v, and so its default, alone.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) bool {
	n = d.resolve(n, path)
	if n == nil {
		return false
	}
	switch v.Type() {
	case durationType:
		s, ok := d.scalar(n, path, "a duration")
		if !ok || s == "" {
			return false
		}
		x, err := parseDuration(s)
		if err != nil {
			d.fail(n.Line, path, err.Error())
			return false
		}
		v.SetInt(int64(x))
		return true
	case sizeType:
		s, ok := d.scalar(n, path, "a size")
		if !ok || s == "" {
			return false
		}
		x, err := parseSize(s)
		if err != nil {
			d.fail(n.Line, path, err.Error())
			return false
		}
		v.SetInt(int64(x))
		return true
	case rateType:
		s, ok := d.scalar(n, path, "a rate")
		if !ok || s == "" {
			return false
		}
		x, err := parseRate(s)
		if err != nil {
			d.fail(n.Line, path, err.Error())
			return false
		}
		v.SetFloat(float64(x))
		return true
	}

	switch v.Kind() {
	case reflect.String:
		s, ok := d.scalar(n, path, "a string")
		if ok {
			v.SetString(s)
		}
		return ok
	case reflect.Bool:
		s, ok := d.scalar(n, path, "true or false")
		if !ok || s == "" {
			return false
		}
		switch s {
		case "true", "True", "TRUE":
			v.SetBool(true)
		case "false", "False", "FALSE":
			v.SetBool(false)
		default:
			// yes/no/on/off are YAML 1.1 booleans; refusing them avoids
			// guessing what "no" was meant to be.
			d.failf(n.Line, path, "invalid boolean %q (want true or false)", s)
			return false
		}
		return true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s, ok := d.scalar(n, path, "an integer")
		if !ok || s == "" {
			return false
		}
		x, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				d.failf(n.Line, path, "integer %q out of range", s)
			} else {
				d.failf(n.Line, path, "invalid integer %q", s)
			}
			return false
		}
		v.SetInt(x)
		return true
	case reflect.Float64:
		s, ok := d.scalar(n, path, "a number")
		if !ok || s == "" {
			return false
		}
		x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			d.failf(n.Line, path, "invalid number %q", s)
			return false
		}
		v.SetFloat(x)
		return true
	case reflect.Pointer:
		if isNull(n) {
			return false
		}
		p := reflect.New(v.Type().Elem())
		if !d.decode(n, p.Elem(), path) {
			return false
		}
		v.Set(p)
		return true
	case reflect.Slice:
		if isNull(n) {
			return false
		}
		if n.Kind != yaml.SequenceNode {
			d.wrongKind(n, path, "a list")
			return false
		}
		if len(n.Content) == 0 {
			// [] means none, as an absent list does; keeping them alike
			// lets a marshalled config compare equal when loaded back.
			return false
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			p := indexPath(path, i)
			d.lines[p] = e.Line
			if d.decode(e, s.Index(i), p) {
				d.set[p] = true
			}
		}
		v.Set(s)
		return true
	case reflect.Map:
		if isNull(n) {
			return false
		}
		if n.Kind != yaml.MappingNode {
			d.wrongKind(n, path, "a mapping")
			return false
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		for _, e := range d.entries(n, path) {
			p := keyPath(path, e.key.Value)
			d.lines[p] = e.key.Line
			ev := reflect.New(v.Type().Elem()).Elem()
			if d.decode(e.val, ev, p) {
				d.set[p] = true
			}
			m.SetMapIndex(reflect.ValueOf(e.key.Value).Convert(v.Type().Key()), ev)
		}
		v.Set(m)
		return true
	case reflect.Struct:
		return d.decodeStruct(n, v, path)
	}
	d.failf(n.Line, path, "cannot decode into %s", v.Type())
	return false
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) bool {
	fields := structFields(v.Type())
	present := make([]bool, len(fields))
	assigned := false
	switch {
	case isNull(n):
	case n.Kind != yaml.MappingNode:
		d.wrongKind(n, path, "a mapping")
	default:
		assigned = true
		for _, e := range d.entries(n, path) {
			i := fieldIndex(fields, e.key.Value)
			if i < 0 {
				d.unknownField(e.key, path, fields)
				continue
			}
			present[i] = true
			p := fieldPath(path, fields[i].name)
			d.lines[p] = e.key.Line
			if d.decode(e.val, v.Field(fields[i].index), p) {
				d.set[p] = true
			}
		}
	}
	for i, f := range fields {
		if !present[i] {
			d.markAbsent(f.typ, fieldPath(path, f.name), d.line(path))
		}
	}
	return assigned
}

// markAbsent gives a field missing from the file, and the fields of its
// struct type, the line of the parent that should have held it.
func (d *decoder) markAbsent(t reflect.Type, path string, line int) {
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = line
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for _, f := range structFields(t) {
		d.markAbsent(f.typ, fieldPath(path, f.name), line)
	}
}

func (d *decoder) unknownField(key *yaml.Node, path string, fields []structField) {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	p := keyPath(path, key.Value)
	if s := suggest(key.Value, names); s != "" {
		d.failf(key.Line, p, "unknown field (did you mean %q?)", s)
		// The intended field is then missing; saying so again is noise.
		d.bad[fieldPath(path, s)] = true
		return
	}
	d.failf(key.Line, p, "unknown field (want one of: %s)", strings.Join(names, ", "))
}

// resolve follows an alias to its anchored node and counts the visit.
// It returns nil once the budget is spent.
func (d *decoder) resolve(n *yaml.Node, path string) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	if n == nil || n.Kind == yaml.AliasNode || !d.step(n.Line, path) {
		return nil
	}
	return n
}

// step counts one visited node against maxSteps and reports whether
// the walk may go on.
func (d *decoder) step(line int, path string) bool {
	if d.exhausted {
		return false
	}
	d.steps++
	if d.steps > maxSteps {
		d.exhausted = true
		d.failf(line, path, "more than %d values once aliases are expanded; too large for a config", maxSteps)
		return false
	}
	return true
}

// scalar returns the expanded text of a scalar node; ok is false for a
// null value or after a reported error.
func (d *decoder) scalar(n *yaml.Node, path, want string) (s string, ok bool) {
	if n.Kind != yaml.ScalarNode {
		d.wrongKind(n, path, want)
		return "", false
	}
	if isNull(n) {
		return "", false
	}
	s, err := expand(n.Value, os.LookupEnv)
	if err != nil {
		d.fail(n.Line, path, err.Error())
		return "", false
	}
	return s, true
}

func (d *decoder) wrongKind(n *yaml.Node, path, want string) {
	d.failf(n.Line, path, "want %s, got %s", want, describe(n))
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	}
	return "something else"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == nullTag
}

type pair struct{ key, val *yaml.Node }

// entries lists the keys of a mapping with merge keys ("<<: *base")
// folded in: keys written in the mapping win over merged ones, and among
// merged mappings the first listed wins, as YAML specifies.
func (d *decoder) entries(n *yaml.Node, path string) []pair {
	return d.collect(n, path, map[*yaml.Node]bool{})
}

func (d *decoder) collect(n *yaml.Node, path string, active map[*yaml.Node]bool) []pair {
	active[n] = true
	defer delete(active, n)
	var own, merged []pair
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !d.step(k.Line, path) {
			return nil
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == mergeTag {
			merged = append(merged, d.merge(val, path, active)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.failf(k.Line, path, "want a plain name as key, got %s", describe(k))
			continue
		}
		if line, dup := first[k.Value]; dup {
			d.failf(k.Line, keyPath(path, k.Value), "duplicate key (first at line %d)", line)
			continue
		}
		first[k.Value] = k.Line
		own = append(own, pair{k, val})
	}
	for _, p := range merged {
		if _, ok := first[p.key.Value]; !ok {
			first[p.key.Value] = p.key.Line
			own = append(own, p)
		}
	}
	return own
}

func (d *decoder) merge(v *yaml.Node, path string, active map[*yaml.Node]bool) []pair {
	v = d.resolve(v, path)
	if v == nil {
		return nil
	}
	var maps []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		maps = []*yaml.Node{v}
	case yaml.SequenceNode:
		for _, e := range v.Content {
			if e = d.resolve(e, path); e == nil {
				return nil
			}
			maps = append(maps, e)
		}
	default:
		d.failf(v.Line, path, "merge (<<) wants a mapping or a list of mappings, got %s", describe(v))
		return nil
	}
	var out []pair
	for _, m := range maps {
		switch {
		case m.Kind != yaml.MappingNode:
			d.failf(m.Line, path, "merge (<<) wants a mapping or a list of mappings, got %s", describe(m))
		case active[m]:
			d.failf(m.Line, path, "merge (<<) includes the mapping it is in")
		default:
			out = append(out, d.collect(m, path, active)...)
		}
	}
	return out
}

type structField struct {
	name  string
	index int
	typ   reflect.Type
}

func structFields(t reflect.Type) []structField {
	var out []structField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, structField{name: name, index: i, typ: f.Type})
	}
	return out
}

func fieldIndex(fields []structField, name string) int {
	for i, f := range fields {
		if f.name == name {
			return i
		}
	}
	return -1
}

func fieldPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// keyPath names a map entry as parent.key, or parent["key"] when the key
// holds characters that would make the path ambiguous or unprintable.
func keyPath(parent, key string) string {
	if isName(key) {
		return fieldPath(parent, key)
	}
	return parent + "[" + strconv.Quote(key) + "]"
}

// isName reports whether s is usable as an upstream name: it appears
// bare in field paths, logs and metrics.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// expand replaces ${VAR} and ${VAR:-default} in s; see the package
// documentation for the rules.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i += 2
			continue
		}
		if i+1 >= len(s) || s[i+1] != '{' {
			b.WriteByte('$')
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", errors.New(`unterminated "${" (write "$$" for a literal "$")`)
		}
		body := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(body, ":-")
		if !isVarName(name) {
			return "", fmt.Errorf("invalid variable reference %q (want ${NAME} or ${NAME:-default})", "${"+body+"}")
		}
		val, ok := lookup(name)
		switch {
		case hasDef && val == "":
			val = def
		case !ok && !hasDef:
			return "", fmt.Errorf("environment variable %s is not set (write ${%s:-} to allow empty)", name, name)
		}
		b.WriteString(val)
		i += 2 + end + 1
	}
	return b.String(), nil
}

func isVarName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// suggest returns the option closest to s by edit distance when it is
// close enough to be a likely typo, else "".
func suggest(s string, options []string) string {
	best, bestD := "", 3
	if len(s) < 4 {
		bestD = 2
	}
	for _, o := range options {
		if d := editDistance(strings.ToLower(s), o); d < bestD {
			best, bestD = o, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		// Long keys are not typos of short field names; skip the work.
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// FieldLine is the line of field (a path such as "listeners[0].address")
// in the config data, or of its nearest parent the file has; 0 when data
// is not YAML. It is for problems found after Parse, such as an address
// that cannot be bound.
func FieldLine(data []byte, field string) int {
	d := newDecoder("")
	root, ok := d.parseYAML(data)
	if !ok {
		return 0
	}
	d.decodeRoot(root, &Config{})
	return d.line(field)
}
