package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"quotehub"
)

func TestLoadConfigAuth(t *testing.T) {
	c := mustLoadConfig(t, nil, nil)
	if c.DataDir != "./data" || c.AuthRequired || c.JWTSecret != "" {
		t.Fatalf("defaults: %+v", c)
	}
	c = mustLoadConfig(t, []string{"-auth-required", "-jwt-issuer", "https://id.example"},
		map[string]string{"QUOTEHUB_JWT_SECRET": strings.Repeat("s", 32), "QUOTEHUB_DATA_DIR": "/var/lib/quotehub", "QUOTEHUB_JWT_AUDIENCE": "quotehub"})
	if !c.AuthRequired || c.JWTIssuer != "https://id.example" || c.JWTAudience != "quotehub" || c.DataDir != "/var/lib/quotehub" || len(c.JWTSecret) != 32 {
		t.Fatalf("set: %+v", c)
	}
	for _, tc := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"ShortSecret", map[string]string{"QUOTEHUB_JWT_SECRET": "short"}, "QUOTEHUB_JWT_SECRET must be at least 32 bytes"},
		{"TwoKeys", map[string]string{"QUOTEHUB_JWT_SECRET": strings.Repeat("s", 32), "QUOTEHUB_JWT_PUBLIC_KEY": "key.pem"}, "set one at most"},
		{"RelativeJWKS", map[string]string{"QUOTEHUB_JWT_JWKS_URL": "/keys"}, "QUOTEHUB_JWT_JWKS_URL"},
		{"AuthRequiredNotBool", map[string]string{"QUOTEHUB_AUTH_REQUIRED": "yes"}, "QUOTEHUB_AUTH_REQUIRED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := loadConfigErr(t, nil, tc.vars); !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	if err := loadConfigErr(t, []string{"-data-dir", ""}, nil); !strings.Contains(err.Error(), "QUOTEHUB_DATA_DIR") {
		t.Fatalf("empty data dir: %v", err)
	}
}

func TestDevSecret(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	s1, path, created, err := devSecret(dir)
	if err != nil || !created || len(s1) != 64 {
		t.Fatalf("first: %q %v %v", s1, created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode %v, want 0700", di.Mode().Perm())
	}
	s2, _, created, err := devSecret(dir)
	if err != nil || created || !bytes.Equal(s1, s2) {
		t.Fatalf("second: %q %v %v", s2, created, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, devSecretFile+".*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	t.Run("Concurrent", func(t *testing.T) {
		dir := t.TempDir()
		var wg sync.WaitGroup
		secrets := make([][]byte, 8)
		errs := make([]error, 8)
		for i := range secrets {
			wg.Go(func() { secrets[i], _, _, errs[i] = devSecret(dir) })
		}
		wg.Wait()
		for i := range secrets {
			if errs[i] != nil || !bytes.Equal(secrets[i], secrets[0]) {
				t.Fatalf("node %d: %q %v; want the first node's secret", i, secrets[i], errs[i])
			}
		}
	})
	t.Run("TooShort", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, devSecretFile), []byte("abc\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := devSecret(dir); err == nil || !strings.Contains(err.Error(), "delete it") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("Unwritable", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := devSecret(filepath.Join(file, "data")); err == nil || !strings.Contains(err.Error(), "data directory") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestOpenVerifier(t *testing.T) {
	ctx := context.Background()
	log := zerolog.New(zerolog.NewTestWriter(t))
	mint := func(t *testing.T, env map[string]string, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := runToken(args, mapEnv(env), &out, &errOut); err != nil {
			t.Fatalf("token: %v\n%s", err, errOut.String())
		}
		return strings.TrimSpace(out.String())
	}
	t.Run("DevSecret", func(t *testing.T) {
		env := map[string]string{"QUOTEHUB_DATA_DIR": t.TempDir()}
		tok := mint(t, env, "-sub", "alice", "-ttl", "5m")
		cfg := mustLoadConfig(t, nil, env)
		v, err := openVerifier(cfg, &log)
		if err != nil {
			t.Fatal(err)
		}
		p, err := v.Verify(ctx, tok)
		if err != nil || p.UserID != "alice" {
			t.Fatalf("%+v %v", p, err)
		}
	})
	t.Run("SecretIssuerAudience", func(t *testing.T) {
		env := map[string]string{"QUOTEHUB_DATA_DIR": t.TempDir(), "QUOTEHUB_JWT_SECRET": strings.Repeat("k", 40),
			"QUOTEHUB_JWT_ISSUER": "https://id.example", "QUOTEHUB_JWT_AUDIENCE": "quotehub"}
		tok := mint(t, env, "-sub", "bob")
		v, err := openVerifier(mustLoadConfig(t, nil, env), &log)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := v.Verify(ctx, tok); err != nil || p.UserID != "bob" {
			t.Fatalf("%+v %v", p, err)
		}
		// A token of the development secret is refused by a configured one.
		dev := mint(t, map[string]string{"QUOTEHUB_DATA_DIR": env["QUOTEHUB_DATA_DIR"]}, "-sub", "bob")
		if _, err := v.Verify(ctx, dev); quotehub.ErrorCode(err) != quotehub.EUnauthorized {
			t.Fatalf("dev token against the configured secret: %v", err)
		}
		if ents, _ := os.ReadDir(env["QUOTEHUB_DATA_DIR"]); len(ents) != 1 {
			t.Errorf("data dir holds %d files; only the token run without a secret should have made one", len(ents))
		}
	})
	t.Run("PublicKey", func(t *testing.T) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		path := filepath.Join(t.TempDir(), "key.pem")
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{"QUOTEHUB_JWT_PUBLIC_KEY": path, "QUOTEHUB_DATA_DIR": t.TempDir()}
		if _, err := openVerifier(mustLoadConfig(t, nil, env), &log); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		if err := runToken([]string{"-sub", "alice"}, mapEnv(env), &out, &errOut); err == nil || !strings.Contains(err.Error(), "private key") {
			t.Fatalf("token with a public key configured: %v", err)
		}
		for name, content := range map[string]string{"missing": "", "notPEM": "hello"} {
			p := filepath.Join(t.TempDir(), name)
			if content != "" {
				_ = os.WriteFile(p, []byte(content), 0o644)
			}
			env := map[string]string{"QUOTEHUB_JWT_PUBLIC_KEY": p}
			if _, err := openVerifier(mustLoadConfig(t, nil, env), &log); err == nil || !strings.Contains(err.Error(), "QUOTEHUB_JWT_PUBLIC_KEY") {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
	t.Run("TokenBadArgs", func(t *testing.T) {
		env := map[string]string{"QUOTEHUB_DATA_DIR": t.TempDir()}
		for _, args := range [][]string{{}, {"-sub", ""}, {"-sub", "alice", "-ttl", "0s"}, {"-sub", "alice", "-ttl", "soon"}, {"-sub", "alice", "extra"}} {
			var out, errOut bytes.Buffer
			if err := runToken(args, mapEnv(env), &out, &errOut); err == nil || out.Len() > 0 {
				t.Errorf("token %q: err %v, printed %q", args, err, out.String())
			}
		}
	})
}
