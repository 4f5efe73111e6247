package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"quotehub"
)

// maxJWKSBytes bounds a key set document.
const maxJWKSBytes = 1 << 20

// jwks is a key set fetched from a URL, cached, and fetched again when a
// token names a key id it does not hold or when it is older than the max
// age; never more often than the min interval.
type jwks struct {
	url  string
	opts Options

	mu      sync.RWMutex
	keys    map[string]jwkKey
	fetched time.Time // when keys were fetched

	fetchMu sync.Mutex // one fetch at a time
	tried   time.Time  // last fetch attempt, guarded by fetchMu
	lastErr error      // of the last attempt, guarded by fetchMu
}

// jwkKey is one usable key of the set.
type jwkKey struct {
	alg string
	key any
}

func newJWKS(opts Options) (*jwks, error) {
	u, err := url.Parse(opts.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("auth: the JWKS URL %q is not an absolute http(s) URL", opts.JWKSURL)
	}
	return &jwks{url: opts.JWKSURL, opts: opts}, nil
}

func (j *jwks) algs() []string {
	return []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()}
}

func (j *jwks) key(ctx context.Context, t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	k, ok, stale := j.lookup(kid)
	if !ok || stale {
		if err := j.refresh(ctx, kid); err != nil && !ok {
			return nil, err
		}
		k, ok, _ = j.lookup(kid)
	}
	switch {
	case !ok && kid == "":
		return nil, refused("the token has no kid and the key set has more than one key (or none)")
	case !ok:
		return nil, refused("the token's kid %q is not in the issuer's key set", truncate(kid, 64))
	case k.alg != t.Method.Alg():
		return nil, refused("the token is signed with %s but key %q is a %s key", t.Method.Alg(), truncate(kid, 64), k.alg)
	}
	return k.key, nil
}

// lookup finds kid (or the only key, for a token without one) in the
// cached set, and reports whether the set is past its max age.
func (j *jwks) lookup(kid string) (k jwkKey, ok, stale bool) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	stale = j.keys == nil || j.opts.Now().Sub(j.fetched) > j.opts.JWKSMaxAge
	if kid == "" && len(j.keys) == 1 {
		for _, k := range j.keys {
			return k, true, stale
		}
	}
	k, ok = j.keys[kid]
	return k, ok, stale
}

// refresh fetches the set again unless the last attempt was less than the
// min interval ago (then it reports that attempt's error, if any). On a
// failed fetch the set held so far is kept.
func (j *jwks) refresh(ctx context.Context, kid string) error {
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	if _, ok, stale := j.lookup(kid); ok && !stale {
		return nil // another caller fetched it meanwhile
	}
	now := j.opts.Now()
	if !j.tried.IsZero() && now.Sub(j.tried) < j.opts.JWKSMinInterval {
		return j.lastErr
	}
	j.tried = now
	keys, err := j.fetch(ctx)
	if err != nil {
		j.lastErr = quotehub.Errorf(quotehub.EUnavailable, "the token's signing keys could not be fetched; retry later")
		return fmt.Errorf("%w (%v)", j.lastErr, err)
	}
	j.lastErr = nil
	j.mu.Lock()
	j.keys, j.fetched = keys, now
	j.mu.Unlock()
	return nil
}

// fetch reads the key set within the timeout, whether or not the
// request that asked for it is still waiting.
func (j *jwks) fetch(ctx context.Context) (map[string]jwkKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), j.opts.JWKSTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch key set: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch key set: %s answered %s", j.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch key set: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("fetch key set: larger than %d bytes", maxJWKSBytes)
	}
	return parseJWKS(body)
}

// parseJWKS reads a JSON Web Key Set (RFC 7517) and returns its RS256 and
// ES256 signing keys by key id. Keys of other types, curves or uses are
// skipped; a document with no usable key is an error.
func parseJWKS(data []byte) (map[string]jwkKey, error) {
	var doc struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			N   string `json:"n"`
			E   string `json:"e"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	keys := make(map[string]jwkKey)
	var errs []error
	for _, k := range doc.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var (
			key jwkKey
			err error
		)
		switch k.Kty {
		case "RSA":
			key, err = rsaJWK(k.N, k.E)
		case "EC":
			if k.Crv != "P-256" {
				continue
			}
			key, err = ecJWK(k.X, k.Y)
		default:
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", k.Kid, err))
			continue
		}
		if k.Alg != "" && k.Alg != key.alg {
			continue
		}
		keys[k.Kid] = key
	}
	if len(keys) == 0 {
		return nil, errors.Join(append([]error{errors.New("key set has no RS256 or ES256 signing key")}, errs...)...)
	}
	return keys, nil
}

func rsaJWK(n, e string) (jwkKey, error) {
	nb, err1 := base64.RawURLEncoding.DecodeString(n)
	eb, err2 := base64.RawURLEncoding.DecodeString(e)
	if err := errors.Join(err1, err2); err != nil || len(eb) == 0 || len(eb) > 4 {
		return jwkKey{}, errors.New("bad RSA modulus or exponent")
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(new(big.Int).SetBytes(eb).Int64())}
	alg, err := algOf(pub)
	if err != nil {
		return jwkKey{}, err
	}
	return jwkKey{alg: alg, key: pub}, nil
}

func ecJWK(x, y string) (jwkKey, error) {
	xb, err1 := base64.RawURLEncoding.DecodeString(x)
	yb, err2 := base64.RawURLEncoding.DecodeString(y)
	if err := errors.Join(err1, err2); err != nil || len(xb) != 32 || len(yb) != 32 {
		return jwkKey{}, errors.New("bad P-256 coordinates")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, xb...), yb...))
	if err != nil {
		return jwkKey{}, err
	}
	return jwkKey{alg: jwt.SigningMethodES256.Alg(), key: pub}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
