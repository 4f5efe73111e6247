package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"quotehub"
	"quotehub/auth"
)

// openVerifier builds the token verifier the configuration names. With no
// key configured it verifies HS256 tokens signed with the data directory's
// development secret, which it creates (and says so) the first time.
func openVerifier(cfg Config, log *zerolog.Logger) (quotehub.Verifier, error) {
	opts := auth.Options{Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience}
	switch {
	case cfg.JWTSecret != "":
		opts.Secret = []byte(cfg.JWTSecret)
	case cfg.JWTPublicKey != "":
		b, err := os.ReadFile(cfg.JWTPublicKey)
		if err != nil {
			return nil, fmt.Errorf("QUOTEHUB_JWT_PUBLIC_KEY: %w", err)
		}
		if opts.PublicKey, err = auth.ParsePublicKey(b); err != nil {
			return nil, fmt.Errorf("QUOTEHUB_JWT_PUBLIC_KEY %s: %w", cfg.JWTPublicKey, err)
		}
	case cfg.JWTJWKSURL != "":
		opts.JWKSURL = cfg.JWTJWKSURL
	default:
		secret, path, created, err := devSecret(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		ev := log.Warn()
		if !created {
			ev = log.Info()
		}
		msg := "no JWT key configured: verifying tokens with the development secret in the data directory; not for production"
		if created {
			msg = "no JWT key configured: created a development secret in the data directory; not for production"
		}
		ev.Str("file", path).Str("make_token", "quotehub token -sub alice").Msg(msg)
		opts.Secret = secret
	}
	v, err := auth.New(opts)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// devSecret returns the development HS256 secret of dir, creating dir
// (mode 0700) and the secret (mode 0600, 32 random bytes in hex) if they
// do not exist yet. created reports a new secret.
func devSecret(dir string) (secret []byte, path string, created bool, err error) {
	path = filepath.Join(dir, devSecretFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, path, false, fmt.Errorf("data directory: %w", err)
	}
	// The secret is written to a temporary file and linked into place, so
	// nodes sharing a data directory never read a half-written secret and
	// the first one's secret wins.
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	tmp, err := os.CreateTemp(dir, devSecretFile+".*")
	if err != nil {
		return nil, path, false, fmt.Errorf("data directory: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(hex.EncodeToString(raw[:]) + "\n")
	if err := errors.Join(werr, tmp.Chmod(0o600), tmp.Close()); err != nil {
		return nil, path, false, fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	switch err := os.Link(tmp.Name(), path); {
	case err == nil:
		created = true
	case !errors.Is(err, fs.ErrExist):
		return nil, path, false, fmt.Errorf("create %s: %w", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, path, false, err
	}
	secret = []byte(strings.TrimSpace(string(b)))
	if len(secret) < auth.MinSecretBytes {
		return nil, path, false, fmt.Errorf("%s holds %d bytes; at least %d are needed (delete it to have a new one made)", path, len(secret), auth.MinSecretBytes)
	}
	return secret, path, created, nil
}

// runToken is `quotehub token -sub USER [-ttl 1h]`: it prints an HS256
// token for USER signed with QUOTEHUB_JWT_SECRET or, without one, the
// data directory's development secret (created if missing). It reads the
// same configuration as the node, so the token carries the iss and aud the
// node checks.
func runToken(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	var (
		sub string
		ttl time.Duration
	)
	cfg, err := loadConfig(args, lookupEnv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&sub, "sub", "", "the user id the token names (its sub); required")
		fs.DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	})
	if err != nil {
		return err
	}
	if sub == "" {
		return errors.New("token: -sub USER is required, e.g. quotehub token -sub alice")
	}
	if ttl <= 0 {
		return errors.New("token: -ttl must be positive")
	}
	if cfg.JWTPublicKey != "" || cfg.JWTJWKSURL != "" {
		return errors.New("token: this configuration verifies RS256/ES256 tokens, which only the issuer's private key signs; quotehub token signs with an HS256 secret (QUOTEHUB_JWT_SECRET, or the development secret)")
	}
	secret := []byte(cfg.JWTSecret)
	if len(secret) == 0 {
		var path string
		var created bool
		if secret, path, created, err = devSecret(cfg.DataDir); err != nil {
			return err
		}
		if created {
			fmt.Fprintf(stderr, "quotehub token: created a development secret in %s\n", path)
		}
	}
	tok, err := auth.Sign(secret, auth.Claims{Subject: sub, TTL: ttl, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience}, time.Now())
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
