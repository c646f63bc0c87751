package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestIsRestricted(t *testing.T) {
	tests := []struct {
		ip   string
		want bool
	}{
		{"127.0.0.1", true},
		{"127.255.0.9", true},
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"172.32.0.1", false},
		{"192.168.1.1", true},
		{"100.64.0.1", true},
		{"100.127.255.254", true},
		{"100.128.0.1", false},
		{"169.254.169.254", true},
		{"0.0.0.0", true},
		{"255.255.255.255", true},
		{"224.0.0.1", true},
		{"203.0.113.7", true},
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"::", true},
		{"::1", true},
		{"fe80::1", true},
		{"fd12:3456::1", true},
		{"fc00::1", true},
		{"ff02::1", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:10.0.0.1", true},
		{"::ffff:8.8.8.8", false},
		{"64:ff9b::a00:1", true},    // NAT64 of 10.0.0.1
		{"64:ff9b::808:808", false}, // NAT64 of 8.8.8.8
		{"2002:7f00:1::", true},     // 6to4 of 127.0.0.1
		{"2606:4700:4700::1111", false},
		{"2001:db8::1", true},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			if got := IsRestricted(netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Fatalf("IsRestricted(%s) = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}
	if !IsRestricted(netip.Addr{}) {
		t.Fatal("invalid address must be restricted")
	}
}

type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ss, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out, nil
}

func TestCheck(t *testing.T) {
	r := fakeResolver{
		"api.example.com":   {"8.8.8.8", "2606:4700:4700::1111"},
		"internal.corp":     {"10.0.0.5"},
		"mixed.example.com": {"8.8.4.4", "192.168.0.10"},
		"v6local.example":   {"fd00::1"},
	}
	tests := []struct {
		host string
		want error
	}{
		{"api.example.com", nil},
		{"8.8.8.8", nil},
		{"[2606:4700:4700::1111]", nil},
		{"127.0.0.1", ErrPrivate},
		{"[::1]", ErrPrivate},
		{"internal.corp", ErrPrivate},
		{"mixed.example.com", ErrPrivate},
		{"v6local.example", ErrPrivate},
		{"nowhere.invalid", ErrUnresolvable},
		{"", ErrUnresolvable},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			err := Check(context.Background(), r, tt.host)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Check(%q) = %v, want %v", tt.host, err, tt.want)
			}
		})
	}
}

func TestCheckResolvesLocalhostWithSystemResolver(t *testing.T) {
	if err := Check(context.Background(), nil, "localhost"); !errors.Is(err, ErrPrivate) {
		t.Fatalf("localhost: %v", err)
	}
}

// TestControlRefusesLoopbackDial proves the dial-time guard: a dialer with
// Control cannot reach a listener on loopback, one without it can.
func TestControlRefusesLoopbackDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	guarded := &net.Dialer{Timeout: 2 * time.Second, Control: Control}
	if c, err := guarded.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("guarded dial to loopback succeeded")
	} else if !errors.Is(err, ErrPrivate) {
		t.Fatalf("guarded dial error = %v, want ErrPrivate", err)
	}
	plain := &net.Dialer{Timeout: 2 * time.Second}
	c, err := plain.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("plain dial: %v", err)
	}
	c.Close()
}
