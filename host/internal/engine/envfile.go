package engine

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// envWhitespace is what Docker trims in front of a variable's name and refuses inside it.
const envWhitespace = " \t"

// ReadEnvFile reads a co-op's env file the way `docker run --env-file` does, because the engine
// API takes the environment as a list: one NAME=value a line, leading white space and a UTF-8
// BOM ignored, blank lines and lines starting with '#' skipped, the value taken literally. A
// line with a name and no '=' passes the variable through from lookup (Docker's CLI looks in its
// own environment) and is left out when lookup has none.
//
// The values are secrets: no error message quotes a value or a whole line.
func ReadEnvFile(path string, lookup func(string) (string, bool)) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseEnvFile(b, path, lookup)
}

// ParseEnvFile is ReadEnvFile on content already read; name is used in messages.
func ParseEnvFile(content []byte, name string, lookup func(string) (string, bool)) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Bytes()
		if !utf8.Valid(raw) {
			return nil, fmt.Errorf("%s: line %d is not valid UTF-8", name, n)
		}
		if n == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
		}
		line := strings.TrimLeftFunc(string(raw), unicode.IsSpace)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		variable, value, hasValue := strings.Cut(line, "=")
		variable = strings.TrimLeft(variable, envWhitespace)
		if variable == "" {
			return nil, fmt.Errorf("%s: line %d has no variable name", name, n)
		}
		if strings.ContainsAny(variable, envWhitespace) {
			return nil, fmt.Errorf("%s: line %d: the variable name holds white space", name, n)
		}
		if hasValue {
			out = append(out, variable+"="+value)
		} else if lookup != nil {
			if v, ok := lookup(variable); ok {
				out = append(out, variable+"="+v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}
