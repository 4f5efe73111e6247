package quotehub

import (
	"errors"
	"fmt"
)

// Error codes of the wire protocol. Clients switch on these strings, so they
// never change.
const (
	EBadRequest          = "bad_request"
	EInvalidSymbol       = "invalid_symbol"
	EUnknownSymbol       = "unknown_symbol"
	ETooManySymbols      = "too_many_symbols"
	EUnauthorized        = "unauthorized"
	EForbidden           = "forbidden"
	ERateLimited         = "rate_limited"
	EUpstreamUnavailable = "upstream_unavailable"
	EInternal            = "internal"

	// ENotFound: no such route, or no such resource of this user (another
	// user's resource is not found either: its existence is not revealed).
	ENotFound = "not_found"
	// EConflict: the request contradicts what is stored (a duplicate name).
	EConflict = "conflict"
	// EPreconditionFailed: an If-Match named a version that is no longer
	// current (another tab changed the resource first).
	EPreconditionFailed = "precondition_failed"
	// EUnavailable: a dependency the request needs (the user-data store)
	// is away; retry later. Quotes do not depend on it.
	EUnavailable = "unavailable"
)

// Error is a domain error with a protocol code and a human message. Any error
// that is not (or does not wrap) an *Error is internal.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("quotehub error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the protocol code of err: the code of the first *Error in
// its chain, EInternal for any other error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EInternal
	}
}

// ErrorMessage returns the human message of err. Internal errors get a
// generic message so that no implementation detail reaches a client.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "Internal error."
	}
}
