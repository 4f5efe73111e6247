package quotehub_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"quotehub"
)

func TestNormalizeSymbol(t *testing.T) {
	t.Run("well-formed symbols are normalised", func(t *testing.T) {
		tests := []struct {
			name, in, want string
		}{
			{"upper case is kept", "KRW-BTC", "KRW-BTC"},
			{"ASCII lower case is upper-cased", "krw-btc", "KRW-BTC"},
			{"mixed case is upper-cased", "Krw-Btc", "KRW-BTC"},
			{"digits and dot are kept", "005930.ks", "005930.KS"},
			{"underscore is allowed", "brk_b", "BRK_B"},
			{"colon is allowed", "nasdaq:aapl", "NASDAQ:AAPL"},
			{"punctuation only is allowed", "._-:", "._-:"},
			{"one letter is enough", "a", "A"},
			{"one digit is enough", "7", "7"},
			{"leading and trailing spaces are trimmed", "  aapl  ", "AAPL"},
			{"tab CR and LF are trimmed", "\t\r\nmsft\n\r\t", "MSFT"},
			{"32 characters are allowed", strings.Repeat("a", 32), strings.Repeat("A", 32)},
			{"32 characters after trimming are allowed", "  " + strings.Repeat("Z", 32) + "\n", strings.Repeat("Z", 32)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := quotehub.NormalizeSymbol(tt.in)
				if err != nil {
					t.Fatalf("NormalizeSymbol(%q) error = %v, want nil", tt.in, err)
				}
				if got != tt.want {
					t.Errorf("NormalizeSymbol(%q) = %q, want %q", tt.in, got, tt.want)
				}
			})
		}
	})

	t.Run("malformed symbols are echoed trimmed with invalid_symbol", func(t *testing.T) {
		tests := []struct {
			name, in, want string
		}{
			{"empty", "", ""},
			{"spaces only", "   ", ""},
			{"ASCII white space only", " \t\r\n ", ""},
			{"33 characters", strings.Repeat("A", 33), strings.Repeat("A", 33)},
			{"33 lower-case characters stay lower case", " " + strings.Repeat("a", 33) + " ", strings.Repeat("a", 33)},
			{"inner space", " krw btc ", "krw btc"},
			{"exclamation mark", "aapl!", "aapl!"},
			{"slash", "KRW/BTC", "KRW/BTC"},
			{"comma", "A,B", "A,B"},
			{"asterisk", "A*", "A*"},
			{"NUL byte", "K\x00", "K\x00"},
			{"full-width letter is not folded", "ｋrw", "ｋrw"},
			{"accented letter", "é", "é"},
			{"Hangul", "삼성", "삼성"},
			{"dotless i is not folded to I", "ıbm", "ıbm"},
			{"long s is not folded to S", "ſpy", "ſpy"},
			{"Kelvin sign is not a K", "\u212aRW", "\u212aRW"},
			{"sharp s", "ß", "ß"},
			{"no-break space is not trimmed", "\u00a0KRW", "\u00a0KRW"},
			{"vertical tab is not trimmed", "\vKRW", "\vKRW"},
			{"form feed is not trimmed", "KRW\f", "KRW\f"},
			{"zero-width space is not trimmed", "KRW\u200b", "KRW\u200b"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := quotehub.NormalizeSymbol(tt.in)
				if got != tt.want {
					t.Errorf("NormalizeSymbol(%q) symbol = %q, want %q", tt.in, got, tt.want)
				}
				assertInvalidSymbol(t, err)
			})
		}
	})

	t.Run("message of a very long name is bounded", func(t *testing.T) {
		in := strings.Repeat("x", 10000)
		got, err := quotehub.NormalizeSymbol(in)
		if got != in {
			t.Errorf("NormalizeSymbol(10000 x) echoed %d bytes, want the 10000 sent", len(got))
		}
		assertInvalidSymbol(t, err)
		if n := len(quotehub.ErrorMessage(err)); n > 300 {
			t.Errorf("message is %d bytes long, want at most 300", n)
		}
	})
}

// assertInvalidSymbol checks that err is an *Error with code invalid_symbol
// and a message for humans.
func assertInvalidSymbol(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("error = nil, want invalid_symbol")
	}
	var e *quotehub.Error
	if !errors.As(err, &e) {
		t.Errorf("error %v (%T) is not a *quotehub.Error", err, err)
	}
	if code := quotehub.ErrorCode(err); code != quotehub.EInvalidSymbol {
		t.Errorf("ErrorCode = %q, want %q", code, quotehub.EInvalidSymbol)
	}
	if msg := quotehub.ErrorMessage(err); strings.TrimSpace(msg) == "" {
		t.Error("ErrorMessage is empty")
	}
}

// name is the comparable summary of a quotehub.Name.
type name struct {
	Symbol  string
	Invalid bool
}

func TestNormalizeList(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []name
	}{
		{"nil list gives no names", nil, []name{}},
		{"case variants count once", []string{"krw-btc", "KRW-BTC", " Krw-Btc\t"}, []name{{"KRW-BTC", false}}},
		{"empty entries are ignored", []string{"", "  ", "aapl", "\t\n"}, []name{{"AAPL", false}}},
		{"only empty entries give no names", []string{"", " "}, []name{}},
		{"order is first appearance", []string{"b", "a", "B", "c", "A"}, []name{{"B", false}, {"A", false}, {"C", false}}},
		{
			"malformed names are kept and deduped by trimmed text",
			[]string{"aapl!", "AAPL!", " aapl! ", "aapl!"},
			[]name{{"aapl!", true}, {"AAPL!", true}},
		},
		{
			"malformed and well-formed names keep their order",
			[]string{"krw-btc", "bad sym", "", "005930.ks", "KRW-BTC", " bad sym", "삼성"},
			[]name{{"KRW-BTC", false}, {"bad sym", true}, {"005930.KS", false}, {"삼성", true}},
		},
		{"too long name is kept as malformed", []string{strings.Repeat("a", 33)}, []name{{strings.Repeat("a", 33), true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := quotehub.NormalizeList(tt.in)
			summary := make([]name, len(got))
			for i, n := range got {
				summary[i] = name{n.Symbol, n.Err != nil}
				if n.Err != nil && quotehub.ErrorCode(n.Err) != quotehub.EInvalidSymbol {
					t.Errorf("name %q: ErrorCode = %q, want %q", n.Symbol, quotehub.ErrorCode(n.Err), quotehub.EInvalidSymbol)
				}
			}
			if !slices.Equal(summary, tt.want) {
				t.Errorf("NormalizeList(%q) = %+v, want %+v", tt.in, summary, tt.want)
			}
		})
	}
}

func TestSplitList(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty string gives no entries", "", nil},
		{"one symbol", "AAPL", []string{"AAPL"}},
		{"commas separate", "A,B,C", []string{"A", "B", "C"}},
		{"empty middle entry is kept", "A,,B", []string{"A", "", "B"}},
		{"leading comma gives an empty entry", ",A", []string{"", "A"}},
		{"spaces are not trimmed", " a , b ", []string{" a ", " b "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := quotehub.SplitList(tt.in)
			if len(got) != len(tt.want) || (len(got) > 0 && !slices.Equal(got, tt.want)) {
				t.Errorf("SplitList(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}

	// A trailing comma may or may not give a trailing empty entry; either way
	// it names nothing.
	t.Run("trailing comma adds no symbol", func(t *testing.T) {
		got := quotehub.SplitList("a,b,")
		nonEmpty := slices.DeleteFunc(slices.Clone(got), func(s string) bool { return s == "" })
		if !slices.Equal(nonEmpty, []string{"a", "b"}) || len(got) > 3 {
			t.Errorf("SplitList(%q) = %q, want [a b] and at most one empty entry", "a,b,", got)
		}
	})

	t.Run("split then normalise drops empties and duplicates", func(t *testing.T) {
		got := quotehub.NormalizeList(quotehub.SplitList("krw-btc,,AAPL, ,KRW-BTC,"))
		var syms []string
		for _, n := range got {
			if n.Err != nil {
				t.Errorf("name %q: unexpected error %v", n.Symbol, n.Err)
			}
			syms = append(syms, n.Symbol)
		}
		if want := []string{"KRW-BTC", "AAPL"}; !slices.Equal(syms, want) {
			t.Errorf("NormalizeList(SplitList(...)) = %q, want %q", syms, want)
		}
	})
}
