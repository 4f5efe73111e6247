package quotehub_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"quotehub"
)

func TestErrorCodeAndMessage(t *testing.T) {
	domain := quotehub.Errorf(quotehub.EUnknownSymbol, "%s is not in the catalogue", "NOPE")
	plain := errors.New("dial tcp 10.0.0.7:6379: connection refused")

	tests := []struct {
		name     string
		err      error
		wantCode string
		wantMsg  string
	}{
		{"nil has no code and no message", nil, "", ""},
		{"*Error gives its code and message", domain, quotehub.EUnknownSymbol, "NOPE is not in the catalogue"},
		{"wrapped *Error gives the inner code and message", fmt.Errorf("lookup: %w", domain), quotehub.EUnknownSymbol, "NOPE is not in the catalogue"},
		{"twice wrapped *Error gives the inner code", fmt.Errorf("b: %w", fmt.Errorf("a: %w", domain)), quotehub.EUnknownSymbol, "NOPE is not in the catalogue"},
		{"joined *Error gives its code", errors.Join(plain, domain), quotehub.EUnknownSymbol, "NOPE is not in the catalogue"},
		{"literal *Error gives its fields", &quotehub.Error{Code: quotehub.ERateLimited, Message: "slow down"}, quotehub.ERateLimited, "slow down"},
		{"plain error is internal with a generic message", plain, quotehub.EInternal, ""},
		{"wrapped plain error is internal", fmt.Errorf("fetch: %w", plain), quotehub.EInternal, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quotehub.ErrorCode(tt.err); got != tt.wantCode {
				t.Errorf("ErrorCode = %q, want %q", got, tt.wantCode)
			}
			msg := quotehub.ErrorMessage(tt.err)
			if tt.wantCode != quotehub.EInternal {
				if msg != tt.wantMsg {
					t.Errorf("ErrorMessage = %q, want %q", msg, tt.wantMsg)
				}
				return
			}
			if strings.TrimSpace(msg) == "" {
				t.Error("ErrorMessage of an internal error is empty")
			}
			for _, leak := range []string{"dial", "10.0.0.7", "6379", "refused", "fetch"} {
				if strings.Contains(msg, leak) {
					t.Errorf("ErrorMessage = %q leaks %q of the internal error", msg, leak)
				}
			}
		})
	}
}

func TestErrorf(t *testing.T) {
	t.Run("formats the message and keeps the code", func(t *testing.T) {
		e := quotehub.Errorf(quotehub.ETooManySymbols, "at most %d symbols", 200)
		if e.Code != quotehub.ETooManySymbols || e.Message != "at most 200 symbols" {
			t.Errorf("Errorf = %+v, want {Code:too_many_symbols Message:at most 200 symbols}", *e)
		}
	})
	t.Run("error text names the code and the message", func(t *testing.T) {
		e := quotehub.Errorf(quotehub.EForbidden, "origin %q not allowed", "https://evil.example")
		s := e.Error()
		if !strings.Contains(s, quotehub.EForbidden) || !strings.Contains(s, `origin "https://evil.example" not allowed`) {
			t.Errorf("Error() = %q, want it to name code %q and the message", s, quotehub.EForbidden)
		}
	})
}

func TestErrorCodesAreTheProtocolStrings(t *testing.T) {
	codes := map[string]string{
		quotehub.EBadRequest:          "bad_request",
		quotehub.EInvalidSymbol:       "invalid_symbol",
		quotehub.EUnknownSymbol:       "unknown_symbol",
		quotehub.ETooManySymbols:      "too_many_symbols",
		quotehub.EUnauthorized:        "unauthorized",
		quotehub.EForbidden:           "forbidden",
		quotehub.ERateLimited:         "rate_limited",
		quotehub.EUpstreamUnavailable: "upstream_unavailable",
		quotehub.EInternal:            "internal",
	}
	for got, want := range codes {
		if got != want {
			t.Errorf("code constant = %q, want %q", got, want)
		}
	}
	if len(codes) != 9 {
		t.Errorf("%d distinct codes, want 9", len(codes))
	}
}

func TestFetchErrors(t *testing.T) {
	t.Run("empty reports no errors", func(t *testing.T) {
		if got := (quotehub.FetchErrors{}).Error(); got != "no errors" {
			t.Errorf("Error() = %q, want %q", got, "no errors")
		}
	})
	t.Run("one error names its symbol and reason", func(t *testing.T) {
		fe := quotehub.FetchErrors{"AAPL": errors.New("timeout")}
		if got, want := fe.Error(), "AAPL: timeout"; got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	})
	t.Run("several errors name one and say there are more", func(t *testing.T) {
		fe := quotehub.FetchErrors{"AAPL": errors.New("timeout"), "MSFT": errors.New("timeout")}
		got := fe.Error()
		if got != "AAPL: timeout (and more)" && got != "MSFT: timeout (and more)" {
			t.Errorf("Error() = %q, want one symbol's reason followed by (and more)", got)
		}
	})
	t.Run("wrapped FetchErrors is internal", func(t *testing.T) {
		var err error = quotehub.FetchErrors{"AAPL": errors.New("timeout")}
		var fe quotehub.FetchErrors
		if !errors.As(fmt.Errorf("fetch: %w", err), &fe) || len(fe) != 1 {
			t.Fatalf("errors.As did not find the FetchErrors")
		}
		if code := quotehub.ErrorCode(err); code != quotehub.EInternal {
			t.Errorf("ErrorCode = %q, want %q", code, quotehub.EInternal)
		}
	})
}
