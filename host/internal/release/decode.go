package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// FieldError is a problem with one field of a document, named by its path
// (release.image, host.proxy.httpPort).
type FieldError struct {
	Path    string
	Message string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Message }

// Errors is every problem found in a document, in field order.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// MaxDocumentBytes bounds what is read from stdin: a release document is a few hundred bytes.
const MaxDocumentBytes = 1 << 20

// readDocument reads one JSON object from r, refusing anything after it but white space, and
// returns its fields in order. Duplicate keys are refused: the last one would silently win.
func readDocument(r io.Reader, path string) (*object, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the document: %w", path, err)
	}
	if len(data) > MaxDocumentBytes {
		return nil, &FieldError{path, fmt.Sprintf("the document is larger than %d bytes", MaxDocumentBytes)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &FieldError{path, "no document on stdin (a JSON object is expected)"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, &FieldError{path, "is not valid JSON: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &FieldError{path, "trailing data after the document"}
	}
	return parseObject(raw, path)
}

// object is a JSON object's members in document order, checked field by field.
type object struct {
	path    string
	keys    []string
	members map[string]json.RawMessage
	used    map[string]bool
	errs    Errors
}

func parseObject(raw json.RawMessage, path string) (*object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, &FieldError{path, "is not valid JSON: " + err.Error()}
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &FieldError{path, "must be a JSON object"}
	}
	o := &object{path: path, members: map[string]json.RawMessage{}, used: map[string]bool{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, &FieldError{path, "is not valid JSON: " + err.Error()}
		}
		key := tok.(string) // object keys are always strings
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, &FieldError{path, "is not valid JSON: " + err.Error()}
		}
		if _, dup := o.members[key]; dup {
			return nil, &FieldError{path + "." + key, "is given more than once"}
		}
		o.keys = append(o.keys, key)
		o.members[key] = value
	}
	return o, nil
}

func (o *object) fail(field, format string, args ...any) {
	o.errs = append(o.errs, &FieldError{o.path + "." + field, fmt.Sprintf(format, args...)})
}

// take returns a member's raw value and marks it known; ok is false when it is absent.
func (o *object) take(field string, required bool) (json.RawMessage, bool) {
	o.used[field] = true
	v, ok := o.members[field]
	if !ok && required {
		o.fail(field, "is required")
	}
	return v, ok
}

// finish refuses every member no take asked for, then returns all problems found.
func (o *object) finish() error {
	for _, k := range o.keys {
		if !o.used[k] {
			o.errs = append(o.errs, &FieldError{o.path, fmt.Sprintf("unknown field %q", k)})
		}
	}
	// Unknown fields first: a misspelt field also shows up as a missing one.
	slices.SortStableFunc(o.errs, func(a, b *FieldError) int {
		ua, ub := strings.HasPrefix(a.Message, "unknown field"), strings.HasPrefix(b.Message, "unknown field")
		switch {
		case ua && !ub:
			return -1
		case ub && !ua:
			return 1
		}
		return 0
	})
	if len(o.errs) == 0 {
		return nil
	}
	return o.errs
}

func isNull(v json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(v), []byte("null")) }

func (o *object) string(field string, required bool, check func(string) bool, hint string) (string, bool) {
	v, ok := o.take(field, required)
	if !ok {
		return "", false
	}
	var s string
	if isNull(v) || json.Unmarshal(v, &s) != nil {
		o.fail(field, "must be a string")
		return "", false
	}
	if check != nil && !check(s) {
		o.fail(field, "%s (got %q)", hint, s)
		return s, false
	}
	return s, true
}

func (o *object) integer(field string, min, max int) (int, bool) {
	return o.number(field, true, min, max)
}

// optionalInteger is integer for a member that may be absent (0, false then).
func (o *object) optionalInteger(field string, min, max int) (int, bool) {
	return o.number(field, false, min, max)
}

func (o *object) number(field string, required bool, min, max int) (int, bool) {
	v, ok := o.take(field, required)
	if !ok {
		return 0, false
	}
	var n json.Number
	// json.Number also takes a quoted number ("8080"): a string is refused before that.
	if isNull(v) || bytes.HasPrefix(bytes.TrimSpace(v), []byte(`"`)) || json.Unmarshal(v, &n) != nil {
		o.fail(field, "must be a whole number from %d to %d", min, max)
		return 0, false
	}
	i, err := n.Int64()
	if err != nil || i < int64(min) || i > int64(max) || i > math.MaxInt32 {
		o.fail(field, "must be a whole number from %d to %d (got %s)", min, max, n.String())
		return 0, false
	}
	return int(i), true
}

func (o *object) boolean(field string) (bool, bool) {
	v, ok := o.take(field, true)
	if !ok {
		return false, false
	}
	var b bool
	if isNull(v) || json.Unmarshal(v, &b) != nil {
		o.fail(field, "must be true or false")
		return false, false
	}
	return b, true
}

// strings reads a list of strings; each must pass check. minLen is the fewest items allowed.
func (o *object) strings(field string, minLen int, check func(string) bool, hint string) ([]string, bool) {
	v, ok := o.take(field, true)
	if !ok {
		return nil, false
	}
	var raw []json.RawMessage
	if isNull(v) || json.Unmarshal(v, &raw) != nil {
		o.fail(field, "must be a list of strings")
		return nil, false
	}
	if len(raw) < minLen {
		o.fail(field, "must hold at least %d item(s)", minLen)
		return nil, false
	}
	out := make([]string, 0, len(raw))
	good := true
	for i, item := range raw {
		var s string
		if isNull(item) || json.Unmarshal(item, &s) != nil {
			o.fail(fmt.Sprintf("%s[%d]", field, i), "must be a string")
			good = false
			continue
		}
		if check != nil && !check(s) {
			o.fail(fmt.Sprintf("%s[%d]", field, i), "%s (got %q)", hint, s)
			good = false
			continue
		}
		out = append(out, s)
	}
	return out, good
}

// child reads a nested object; its problems are added to this one's.
func (o *object) child(field string) (*object, bool) {
	v, ok := o.take(field, true)
	if !ok {
		return nil, false
	}
	c, err := parseObject(v, o.path+"."+field)
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			o.errs = append(o.errs, fe)
		}
		return nil, false
	}
	return c, true
}

// merge adds a nested object's problems, after checking it for unknown fields.
func (o *object) merge(c *object) {
	if err := c.finish(); err != nil {
		o.errs = append(o.errs, c.errs...)
	}
}
