package quotehub

// MaxSymbolLen is the longest well-formed symbol, in bytes.
const MaxSymbolLen = 32

// NormalizeSymbol trims ASCII white space, upper-cases ASCII letters and
// checks the result is 1–MaxSymbolLen characters of A-Z 0-9 . - _ :.
// It returns the normalised symbol, or the trimmed input and an
// EInvalidSymbol error. Non-ASCII letters are never folded (and are invalid).
func NormalizeSymbol(s string) (string, error) {
	s = trimASCIISpace(s)
	if len(s) == 0 || len(s) > MaxSymbolLen {
		return s, invalidSymbol(s)
	}
	lower := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_', c == ':':
		case c >= 'a' && c <= 'z':
			lower = true
		default:
			return s, invalidSymbol(s)
		}
	}
	if !lower {
		return s, nil // the common case allocates nothing
	}
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b), nil
}

func invalidSymbol(s string) *Error {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return Errorf(EInvalidSymbol, "%q is not a symbol: use 1-%d characters of A-Z 0-9 . - _ :", s, MaxSymbolLen)
}

func trimASCIISpace(s string) string {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// Name is one entry of a symbol list after normalisation: Symbol is the
// normalised symbol, or the trimmed input when Err is set.
type Name struct {
	Symbol string
	Err    error
}

// NormalizeList normalises the names of one request: entries that are empty
// after trimming are ignored, and a name given twice (after normalisation)
// counts once. Malformed names are kept, with Err set, so that limits can
// count them and replies can echo them. Order is first appearance.
func NormalizeList(raw []string) []Name {
	out := make([]Name, 0, len(raw))
	seen := make(map[string]struct{}, len(raw))
	for _, r := range raw {
		sym, err := NormalizeSymbol(r)
		if sym == "" {
			continue
		}
		if _, dup := seen[sym]; dup {
			continue
		}
		seen[sym] = struct{}{}
		out = append(out, Name{Symbol: sym, Err: err})
	}
	return out
}

// SplitList splits a comma-separated list of symbols (a query parameter).
func SplitList(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != ',' {
			i++
		}
		out = append(out, s[:i])
		if i == len(s) {
			break
		}
		s = s[i+1:]
	}
	return out
}
