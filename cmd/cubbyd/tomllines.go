package main

import (
	"strings"

	"github.com/BurntSushi/toml"
)

// lineKeys finds, for each line of a TOML document, the key that line sets
// or the table its header opens, as the dotted key string the toml
// package's MetaData uses ("image.registries.\"registry.k8s.io\".mirrors");
// "" for other lines. It is a line scanner, not a parser: enough to point an
// error or a source comment at a line of a config file, which the toml
// package does not do for keys it did not decode. A key inside an inline
// table or a multi-line value is found at its outer key's line.
func lineKeys(src string) []string {
	lines := strings.Split(src, "\n")
	keys := make([]string, len(lines))
	var table toml.Key
	for i, line := range lines {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#':
		case strings.HasPrefix(line, "["):
			name := strings.TrimLeft(line, "[")
			end := strings.Index(name, "]")
			if end < 0 {
				continue
			}
			if parts, ok := splitKey(name[:end]); ok {
				table = parts
				keys[i] = table.String()
			}
		default:
			eq := keyEnd(line)
			if eq < 0 {
				continue
			}
			if parts, ok := splitKey(line[:eq]); ok {
				keys[i] = append(append(toml.Key{}, table...), parts...).String()
			}
		}
	}
	return keys
}

// keyEnd returns the index of the '=' that ends the key of an assignment
// line, skipping quoted key parts; -1 when there is none.
func keyEnd(line string) int {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '=':
			return i
		}
	}
	return -1
}

// splitKey splits a dotted TOML key ("a.\"b.c\".d") into its parts.
func splitKey(s string) (toml.Key, bool) {
	var parts toml.Key
	s = strings.TrimSpace(s)
	for s != "" {
		var part string
		switch s[0] {
		case '"', '\'':
			end := closingQuote(s)
			if end < 0 {
				return nil, false
			}
			part = s[1:end]
			if s[0] == '"' {
				part = unescapeBasic(part)
			}
			s = s[end+1:]
		default:
			end := strings.IndexAny(s, ". \t")
			if end < 0 {
				end = len(s)
			}
			part, s = s[:end], s[end:]
		}
		if part == "" && parts == nil && s == "" {
			return nil, false
		}
		parts = append(parts, part)
		s = strings.TrimSpace(s)
		if s == "" {
			break
		}
		if s[0] != '.' {
			return nil, false
		}
		s = strings.TrimSpace(s[1:])
	}
	return parts, len(parts) > 0
}

// closingQuote returns the index of the quote that ends the quoted string
// s starts with, or -1.
func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		switch {
		case s[0] == '"' && s[i] == '\\':
			i++
		case s[i] == s[0]:
			return i
		}
	}
	return -1
}

// unescapeBasic undoes the common escapes of a basic string key.
func unescapeBasic(s string) string {
	return strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\t`, "\t", `\n`, "\n").Replace(s)
}
