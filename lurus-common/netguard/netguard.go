// Package netguard decides whether a provider's upstream address may be
// reached: loopback, link-local, private (RFC 1918), carrier-grade NAT,
// IPv6 unique-local and other special-purpose addresses are refused unless
// an admin marked the provider allow_private_network (DESIGN.md §2).
//
// provider-service applies Check when a base URL is saved; that check is
// advisory, since DNS may answer differently later. The authoritative check
// is at dial time: a gateway or prober sets Control on its net.Dialer, so
// every connection, including ones to hosts whose DNS changed since, is
// checked against the address actually dialed.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// ErrPrivate is matched (errors.Is) by every refusal of a restricted
// address.
var ErrPrivate = errors.New("address is in a private, loopback or otherwise restricted range")

// ErrUnresolvable is returned by Check when the host name does not resolve.
// Callers decide whether that is fatal: at save time it is not (the dial
// time check still applies), at dial time the dial fails anyway.
var ErrUnresolvable = errors.New("host does not resolve")

// restricted lists every range a public upstream never lives in.
var restricted = mustPrefixes(
	"0.0.0.0/8",       // "this network", including the unspecified address
	"10.0.0.0/8",      // RFC 1918
	"100.64.0.0/10",   // carrier-grade NAT (RFC 6598)
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local, cloud metadata endpoints
	"172.16.0.0/12",   // RFC 1918
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // documentation (TEST-NET-1)
	"192.168.0.0/16",  // RFC 1918
	"198.18.0.0/15",   // benchmarking (RFC 2544)
	"198.51.100.0/24", // documentation (TEST-NET-2)
	"203.0.113.0/24",  // documentation (TEST-NET-3)
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, including broadcast
	"::/128",          // unspecified
	"::1/128",         // loopback
	"64:ff9b:1::/48",  // local-use NAT64 (RFC 8215)
	"fc00::/7",        // unique local (ULA)
	"fe80::/10",       // link-local
	"fec0::/10",       // deprecated site-local
	"ff00::/8",        // multicast
	"2001:db8::/32",   // documentation
	"100::/64",        // discard-only
	"2001:10::/28",    // ORCHID
	"2001::/32",       // Teredo
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// IsRestricted reports whether ip is an address a provider may only use
// with allow_private_network. IPv4-mapped IPv6 addresses are judged by their
// IPv4 form; NAT64 and 6to4 addresses by the IPv4 address they embed, and
// are otherwise allowed (a NAT64 gateway to a public IPv4 upstream is
// legitimate). An invalid address is restricted.
func IsRestricted(ip netip.Addr) bool {
	if !ip.IsValid() {
		return true
	}
	ip = ip.Unmap()
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			return IsRestricted(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		case sixToFour.Contains(ip):
			return IsRestricted(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
		}
	}
	for _, p := range restricted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Resolver looks host names up; *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Check resolves host (a literal IPv4/IPv6 address, bracketed or not, or a
// DNS name) and returns an error wrapping ErrPrivate naming the first
// restricted address it resolves to. A name is refused if any of its
// addresses is restricted, since a client may dial any of them. A name that
// does not resolve returns an error wrapping ErrUnresolvable. r may be nil
// for net.DefaultResolver.
func Check(ctx context.Context, r Resolver, host string) error {
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if IsRestricted(ip) {
			return fmt.Errorf("%s: %w", ip, ErrPrivate)
		}
		return nil
	}
	if host == "" {
		return fmt.Errorf("empty host: %w", ErrUnresolvable)
	}
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("%s: %w: %v", host, ErrUnresolvable, err)
	}
	for _, a := range addrs {
		if IsRestricted(a) {
			return fmt.Errorf("%s resolves to %s: %w", host, a.Unmap(), ErrPrivate)
		}
	}
	return nil
}

// Control is a net.Dialer Control function that refuses to connect to a
// restricted address. It sees the address after DNS resolution, so it also
// stops DNS rebinding. Use it on the dialer of every connection to a
// provider that is not allow_private_network.
func Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("netguard: %s %s: %w", network, address, ErrPrivate)
	}
	if IsRestricted(ap.Addr()) {
		return fmt.Errorf("netguard: refusing to dial %s: %w", ap.Addr().Unmap(), ErrPrivate)
	}
	return nil
}
