// Package auth verifies the JSON Web Tokens that the application owning the
// users issues, and signs tokens for trying quotehub out. It implements
// quotehub.Verifier with github.com/golang-jwt/jwt/v5.
//
// One key source is configured: an HMAC secret (HS256), a PEM public key
// (RS256 for an RSA key, ES256 for a P-256 key) or a JWKS URL. The key
// decides the algorithm: a token whose header names another one is refused,
// which closes the classic confusions (alg "none"; an HS256 token "signed"
// with an RSA public key used as the HMAC secret).
package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"quotehub"
)

// Options configure a Verifier. Exactly one of Secret, PublicKey and
// JWKSURL is set.
type Options struct {
	// Secret is the HS256 key: at least 32 bytes (RFC 7518, 3.2).
	Secret []byte
	// PublicKey is an *rsa.PublicKey (RS256) or a P-256 *ecdsa.PublicKey
	// (ES256); see ParsePublicKey.
	PublicKey crypto.PublicKey
	// JWKSURL is where the issuer publishes its keys (RS256 and ES256 keys
	// are used; others are ignored).
	JWKSURL string
	// Issuer and Audience, when set, must match the token's iss and one of
	// its aud.
	Issuer   string
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 30 s.
	Leeway time.Duration
	// JWKSTimeout bounds one fetch of the key set. Default 5 s.
	JWKSTimeout time.Duration
	// JWKSMinInterval is the least time between two fetches of the key
	// set (a token naming an unknown key id fetches it again, at most this
	// often, so forged key ids cannot make the node hammer the issuer).
	// Default 10 s.
	JWKSMinInterval time.Duration
	// JWKSMaxAge is how long a fetched key set is used before the next
	// token fetches it again (retired keys then stop working). Default 1 h.
	JWKSMaxAge time.Duration
	// CacheSize is how many verified tokens are remembered until they
	// expire, so a client that sends one token with every request (or
	// reconnects with it) pays for its signature once: an RS256 check costs
	// about 90 µs, ES256 about 200 µs. Default 10,000; negative: none.
	CacheSize int
	// HTTPClient fetches the key set. Default: a client of its own.
	HTTPClient *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// MinSecretBytes is the shortest HS256 secret accepted.
const MinSecretBytes = 32

// maxTokenBytes bounds a token before it is parsed.
const maxTokenBytes = 8 << 10

// maxSubjectBytes bounds the user id a token may carry.
const maxSubjectBytes = 255

// Verifier checks tokens against one key source.
type Verifier struct {
	opts   Options
	keys   keySource
	parser *jwt.Parser

	mu   sync.Mutex
	seen map[string]quotehub.Principal // verified tokens, until exp + leeway
}

var _ quotehub.Verifier = (*Verifier)(nil)

// keySource finds the key that must have signed a token, and the only
// algorithm that key may sign with.
type keySource interface {
	key(ctx context.Context, t *jwt.Token) (any, error)
	// algs are the algorithms the source can accept at all.
	algs() []string
}

// New checks opts and returns a Verifier.
func New(opts Options) (*Verifier, error) {
	n := 0
	for _, set := range []bool{len(opts.Secret) > 0, opts.PublicKey != nil, opts.JWKSURL != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("auth: configure exactly one of a secret, a public key and a JWKS URL")
	}
	if opts.Leeway <= 0 {
		opts.Leeway = 30 * time.Second
	}
	if opts.JWKSTimeout <= 0 {
		opts.JWKSTimeout = 5 * time.Second
	}
	if opts.JWKSMinInterval <= 0 {
		opts.JWKSMinInterval = 10 * time.Second
	}
	if opts.JWKSMaxAge <= 0 {
		opts.JWKSMaxAge = time.Hour
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 10000
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	v := &Verifier{opts: opts, seen: make(map[string]quotehub.Principal)}
	switch {
	case len(opts.Secret) > 0:
		if len(opts.Secret) < MinSecretBytes {
			return nil, fmt.Errorf("auth: the HS256 secret has %d bytes; at least %d are needed", len(opts.Secret), MinSecretBytes)
		}
		v.keys = fixedKey{alg: jwt.SigningMethodHS256.Alg(), pub: opts.Secret}
	case opts.PublicKey != nil:
		alg, err := algOf(opts.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		v.keys = fixedKey{alg: alg, pub: opts.PublicKey}
	default:
		ks, err := newJWKS(opts)
		if err != nil {
			return nil, err
		}
		v.keys = ks
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(v.keys.algs()),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithTimeFunc(opts.Now),
		jwt.WithStrictDecoding(), // one encoding per token: no variants of an accepted one
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	v.parser = jwt.NewParser(popts...)
	return v, nil
}

// Verify implements quotehub.Verifier.
func (v *Verifier) Verify(ctx context.Context, token string) (quotehub.Principal, error) {
	if len(token) > maxTokenBytes {
		return quotehub.Principal{}, refused("the token is longer than %d bytes", maxTokenBytes)
	}
	if p, ok := v.cached(token); ok {
		return p, nil
	}
	var claims jwt.RegisteredClaims
	t, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		return v.keys.key(ctx, t)
	})
	if err != nil {
		return quotehub.Principal{}, v.explain(t, &claims, err)
	}
	switch {
	case claims.Subject == "":
		return quotehub.Principal{}, refused("the token has no sub (the user id)")
	case len(claims.Subject) > maxSubjectBytes:
		return quotehub.Principal{}, refused("the token's sub is longer than %d bytes", maxSubjectBytes)
	case strings.ContainsFunc(claims.Subject, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return quotehub.Principal{}, refused("the token's sub has control characters")
	}
	p := quotehub.Principal{UserID: claims.Subject, Expires: claims.ExpiresAt.Time}
	v.remember(token, p)
	return p, nil
}

// cached returns the principal of a token verified before, unless it has
// expired since (then it is forgotten, and the full check refuses it).
func (v *Verifier) cached(token string) (quotehub.Principal, bool) {
	if v.opts.CacheSize < 0 {
		return quotehub.Principal{}, false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	p, ok := v.seen[token]
	if ok && v.opts.Now().After(p.Expires.Add(v.opts.Leeway)) {
		delete(v.seen, token)
		return quotehub.Principal{}, false
	}
	return p, ok
}

// remember caches a verified token; when the cache is full an arbitrary
// entry (Go's map order is random) makes room.
func (v *Verifier) remember(token string, p quotehub.Principal) {
	if v.opts.CacheSize < 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.seen) >= v.opts.CacheSize {
		for k := range v.seen {
			delete(v.seen, k)
			break
		}
	}
	v.seen[token] = p
}

// refused is a refusal of a token: unauthorized, with a message for the
// client.
func refused(format string, args ...any) *quotehub.Error {
	return quotehub.Errorf(quotehub.EUnauthorized, format, args...)
}

// explain turns the parser's error into a refusal that says what was wrong.
// An error of the key source (a key set that could not be fetched) is
// passed on as it is.
func (v *Verifier) explain(t *jwt.Token, c *jwt.RegisteredClaims, err error) error {
	var qe *quotehub.Error
	if errors.As(err, &qe) {
		return qe
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return refused("the token is malformed: want three base64url parts, header.claims.signature, of JSON (exp, nbf and iat numbers; iss and sub strings)")
	case t != nil && t.Method != nil && !contains(v.keys.algs(), t.Method.Alg()):
		return refused("the token is signed with %s; this node accepts %s only", t.Method.Alg(), strings.Join(v.keys.algs(), ", "))
	case t != nil && t.Method == nil:
		return refused("the token's alg is missing or unknown; this node accepts %s only", strings.Join(v.keys.algs(), ", "))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return refused("the token's signature does not verify")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && c.ExpiresAt == nil:
		return refused("the token has no exp: tokens must expire")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && v.opts.Issuer != "" && c.Issuer == "":
		return refused("the token has no iss; want %q", v.opts.Issuer)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && v.opts.Audience != "" && len(c.Audience) == 0:
		return refused("the token has no aud; want %q", v.opts.Audience)
	case errors.Is(err, jwt.ErrTokenExpired):
		return refused("the token has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return refused("the token is not valid yet (nbf)")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return refused("the token is issued in the future (iat)")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return refused("the token's iss is not %q", v.opts.Issuer)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return refused("the token's aud does not include %q", v.opts.Audience)
	default:
		return refused("the token is not accepted: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fixedKey is one configured key.
type fixedKey struct {
	alg string
	pub any
}

func (k fixedKey) key(_ context.Context, t *jwt.Token) (any, error) {
	if t.Method.Alg() != k.alg { // the parser checked already; a second lock on the door
		return nil, refused("the token is signed with %s; this node accepts %s only", t.Method.Alg(), k.alg)
	}
	return k.pub, nil
}

func (k fixedKey) algs() []string { return []string{k.alg} }

// algOf is the one algorithm a public key verifies.
func algOf(key crypto.PublicKey) (string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", fmt.Errorf("the RSA key has %d bits; at least 2048 are needed", k.N.BitLen())
		}
		return jwt.SigningMethodRS256.Alg(), nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("the EC key is on %s; ES256 needs P-256", k.Curve.Params().Name)
		}
		return jwt.SigningMethodES256.Alg(), nil
	default:
		return "", fmt.Errorf("a %T key is not supported: use an RSA (RS256) or P-256 EC (ES256) public key", key)
	}
}

// ParsePublicKey reads a PEM "PUBLIC KEY" (PKIX), "RSA PUBLIC KEY"
// (PKCS #1) or "CERTIFICATE" block, and checks that it is an RSA key of
// 2048 bits or more or a P-256 key.
func ParsePublicKey(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var (
		key crypto.PublicKey
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block %q is not a public key (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", block.Type)
	}
	if err != nil {
		return nil, err
	}
	if _, err := algOf(key); err != nil {
		return nil, err
	}
	return key, nil
}

// Claims are what Sign puts into a token.
type Claims struct {
	Subject  string
	TTL      time.Duration
	Issuer   string // optional
	Audience string // optional
}

// Sign returns an HS256 token for c, issued now. It is how `quotehub
// token` makes tokens for trying a node out; production tokens come from
// the application that owns the users.
func Sign(secret []byte, c Claims, now time.Time) (string, error) {
	if c.Subject == "" {
		return "", errors.New("a token needs a subject (the user id)")
	}
	if c.TTL <= 0 {
		return "", errors.New("a token needs a positive time to live")
	}
	if len(secret) < MinSecretBytes {
		return "", fmt.Errorf("the secret has %d bytes; at least %d are needed", len(secret), MinSecretBytes)
	}
	rc := jwt.RegisteredClaims{
		Subject:   c.Subject,
		Issuer:    c.Issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(c.TTL)),
	}
	if c.Audience != "" {
		rc.Audience = jwt.ClaimStrings{c.Audience}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, rc).SignedString(secret)
}
