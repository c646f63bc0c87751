package keyauth

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/clientip"
)

func TestAuthorize(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	office := ParseAllowedIPs([]string{"198.51.100.0/24", "2001:db8::7"})
	proxies, err := clientip.Parse([]string{"10.42.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		info Info
		peer string // socket peer
		xff  string // X-Forwarded-For
		r    clientip.Resolver
		want apperr.Reason // "" = allowed
	}{
		{"plain key", Info{UserActive: true}, "203.0.113.1", "", clientip.Resolver{}, ""},
		{"disabled user", Info{UserActive: false}, "203.0.113.1", "", clientip.Resolver{}, apperr.ReasonUserDisabled},
		{"expired", Info{UserActive: true, ExpiresAt: now}, "203.0.113.1", "", clientip.Resolver{}, apperr.ReasonKeyExpired},
		{"not yet expired", Info{UserActive: true, ExpiresAt: now.Add(time.Second)}, "203.0.113.1", "", clientip.Resolver{}, ""},
		{"disabled wins over expired", Info{ExpiresAt: now.Add(-time.Hour)}, "203.0.113.1", "", clientip.Resolver{}, apperr.ReasonUserDisabled},
		{"IP allowed, direct", Info{UserActive: true, AllowedIPs: office}, "198.51.100.9", "", clientip.Resolver{}, ""},
		{"IPv6 single address allowed", Info{UserActive: true, AllowedIPs: office}, "2001:db8::7", "", clientip.Resolver{}, ""},
		{"mapped address compared as IPv4", Info{UserActive: true, AllowedIPs: office}, "::ffff:198.51.100.9", "", clientip.Resolver{}, ""},
		{"IP refused, direct", Info{UserActive: true, AllowedIPs: office}, "203.0.113.1", "", clientip.Resolver{}, apperr.ReasonIPNotAllowed},
		{"spoofed header from an untrusted peer", Info{UserActive: true, AllowedIPs: office}, "203.0.113.1", "198.51.100.9", clientip.Resolver{}, apperr.ReasonIPNotAllowed},
		{"spoofed header not trusted by default even from the proxy", Info{UserActive: true, AllowedIPs: office}, "10.42.0.5", "198.51.100.9", clientip.Resolver{}, apperr.ReasonIPNotAllowed},
		{"IP allowed behind a trusted proxy", Info{UserActive: true, AllowedIPs: office}, "10.42.0.5", "198.51.100.9", proxies, ""},
		{"IP refused behind a trusted proxy", Info{UserActive: true, AllowedIPs: office}, "10.42.0.5", "203.0.113.1", proxies, apperr.ReasonIPNotAllowed},
		{"client-chosen left entry ignored behind a proxy", Info{UserActive: true, AllowedIPs: office}, "10.42.0.5", "198.51.100.9, 203.0.113.1", proxies, apperr.ReasonIPNotAllowed},
		{"allow-list that did not parse admits nothing", Info{UserActive: true, AllowedIPs: ParseAllowedIPs([]string{"garbage"})}, "203.0.113.1", "", clientip.Resolver{}, apperr.ReasonIPNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var xff []string
			if c.xff != "" {
				xff = []string{c.xff}
			}
			client := c.r.Resolve(netip.MustParseAddr(c.peer), xff...)
			err := c.info.Authorize(client, now)
			if got := reasonOrEmpty(err); got != c.want {
				t.Fatalf("Authorize from %s = %v, want %q", client, err, c.want)
			}
			if err != nil && apperr.KindOf(err) != apperr.KindForbidden {
				t.Errorf("refusal kind %v, want forbidden (403)", apperr.KindOf(err))
			}
		})
	}
	// Unknown address with an allow-list: refused, never waved through.
	if err := (&Info{UserActive: true, AllowedIPs: office}).Authorize(netip.Addr{}, now); apperr.ReasonOf(err) != apperr.ReasonIPNotAllowed {
		t.Errorf("zero address: %v", err)
	}
}

func TestAuthorizeModel(t *testing.T) {
	now := time.Now()
	k := Info{UserActive: true, Models: []string{"gpt-4o*", "claude-3-5-sonnet@20240620"}, AllowedIPs: ParseAllowedIPs([]string{"192.0.2.1"})}
	ok := netip.MustParseAddr("192.0.2.1")
	bad := netip.MustParseAddr("192.0.2.2")
	for _, c := range []struct {
		model  string
		client netip.Addr
		want   apperr.Reason
	}{
		{"gpt-4o-mini", ok, ""},
		{"claude-3-5-sonnet@20240620", ok, ""},
		{"o1", ok, apperr.ReasonModelNotAllowed},
		{"o1", bad, apperr.ReasonModelNotAllowed}, // model first, as the gateway always answered
		{"gpt-4o", bad, apperr.ReasonIPNotAllowed},
	} {
		if got := reasonOrEmpty(k.AuthorizeModel(c.model, c.client, now)); got != c.want {
			t.Errorf("AuthorizeModel(%q, %s) = %q, want %q", c.model, c.client, got, c.want)
		}
	}
	if !(&Info{}).AllowsModel("anything") {
		t.Error("an empty model list must allow every model")
	}
}

func reasonOrEmpty(err error) apperr.Reason {
	if err == nil {
		return ""
	}
	return apperr.ReasonOf(err)
}
