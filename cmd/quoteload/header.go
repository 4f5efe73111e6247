package main

import (
	"errors"
	"net/http"
	"strings"
)

// headerList is the value of -header: request headers sent with every
// http-mode read (a bearer token for /v1/me/..., say).
type headerList []string

func (h *headerList) String() string { return strings.Join(*h, ", ") }

// Set takes one "Name: value"; the flag may be given again for more.
func (h *headerList) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	switch {
	case !ok || name == "":
		return errors.New(`want "Name: value"`)
	case strings.ContainsAny(v, "\r\n"):
		return errors.New("a header may not hold a line break")
	case strings.ContainsAny(name, " \t()<>@,;:\\\"/[]?={}"):
		return errors.New("the header name is not a token")
	}
	*h = append(*h, http.CanonicalHeaderKey(name)+": "+value)
	return nil
}

// appendHeaders appends the headers as request lines ("Name: value\r\n").
func (h headerList) appendHeaders(b []byte) []byte {
	for _, l := range h {
		b = append(b, l...)
		b = append(b, "\r\n"...)
	}
	return b
}

// setOn sets the headers on a net/http request.
func (h headerList) setOn(req *http.Request) {
	for _, l := range h {
		name, value, _ := strings.Cut(l, ": ")
		req.Header.Add(name, value)
	}
}
