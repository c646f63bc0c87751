package config

import (
	"errors"
	"strings"
	"testing"
)

// TestNATSCheck: every service validates its nats section here once, the
// namespace included (a namespace is spliced into every subject and
// stream name, so it must be one subject token).
func TestNATSCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		nats NATS
		want string
	}{
		{"production", NATS{URL: "nats://n:4222"}, ""},
		{"test namespace", NATS{URL: "nats://n:4222", Namespace: "t-1a"}, ""},
		{"no url", NATS{}, "nats.url is required"},
		{"namespace with dot", NATS{URL: "nats://n:4222", Namespace: "a.b"}, `nats.namespace "a.b" is not a subject token`},
		{"namespace with wildcard", NATS{URL: "nats://n:4222", Namespace: "a*"}, "nats.namespace"},
		{"namespace with space", NATS{URL: "nats://n:4222", Namespace: "a b"}, "nats.namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Problems
			tc.nats.Check(&p)
			err := p.Err()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestProblemsIn(t *testing.T) {
	inner := errString("ttl too long")
	var p Problems
	p.In("auth.failures", nil)
	if p.Err() != nil {
		t.Fatalf("nil recorded: %v", p.Err())
	}
	p.In("auth.failures", inner)
	err := p.Err()
	if err == nil || err.Error() != "auth.failures: ttl too long" || !errors.Is(err, inner) {
		t.Fatalf("err = %v, want auth.failures: ttl too long, wrapping it", err)
	}
}

func TestCheckProxies(t *testing.T) {
	var ok, bad Problems
	Proxies{TrustedProxies: []string{"10.42.0.0/16"}}.CheckProxies(&ok)
	Proxies{TrustedProxies: []string{"10.0.0.0/33"}}.CheckProxies(&bad)
	if ok.Err() != nil {
		t.Fatalf("valid CIDR refused: %v", ok.Err())
	}
	if err := bad.Err(); err == nil || !strings.Contains(err.Error(), "server.trusted_proxies") {
		t.Fatalf("bad CIDR: %v", err)
	}
}

func TestSectionDefaults(t *testing.T) {
	var n NATS
	var l Log
	n.SetDefaults()
	l.SetDefaults()
	if n.URL != "nats://127.0.0.1:4222" || l.Level != "info" {
		t.Fatalf("defaults: %+v %+v", n, l)
	}
	n, l = NATS{URL: "nats://n:1"}, Log{Level: "debug"}
	n.SetDefaults()
	l.SetDefaults()
	if n.URL != "nats://n:1" || l.Level != "debug" {
		t.Fatalf("a set value was overwritten: %+v %+v", n, l)
	}
}
