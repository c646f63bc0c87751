package biz

import (
	"regexp"

	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
)

// groupRe is the syntax of a user group name.
var groupRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidGroup reports whether s is a well-formed group name: 1-64 of
// [A-Za-z0-9_-].
func ValidGroup(s string) bool { return groupRe.MatchString(s) }

// DefaultGroup is the group of a user created without one; its entry in
// LimitRules.Groups is also the default of every group not listed there.
const DefaultGroup = "default"

// LimitRules turn the limits stored on users and keys into the limits in
// force, which the key verification answer carries to the gateway and
// /me shows.
//
//   - A user's limit, per kind, is its own value when it has one (> 0),
//     else its group's default from billing config, else none (0). So an
//     admin's explicit value always wins over the group, in either
//     direction; a user in a limited group cannot be made unlimited by 0,
//     only by a group without that default (or a large value).
//   - A key's limit, per kind, is its own value held under its user's
//     (ratelimit.Limits.Within): the smaller of the two where both are set,
//     else whichever is set. A key's value above its user's is accepted and
//     stored (the user's limit may be raised later) but never in force.
type LimitRules struct {
	// Groups are the default limits per user group. A group not listed
	// takes the entry of DefaultGroup, if there is one.
	Groups map[string]ratelimit.Limits
}

// User is the limits in force for u's subject "user:<id>".
func (r LimitRules) User(u *User) ratelimit.Limits {
	def, ok := r.Groups[u.Group]
	if !ok {
		def = r.Groups[DefaultGroup]
	}
	return ratelimit.Limits{RPM: ownOr(u.RPM, def.RPM), TPM: ownOr(u.TPM, def.TPM),
		Concurrency: ownOr(u.Concurrency, def.Concurrency)}
}

// Key is the limits in force for k's subject "key:<id>", k belonging to u.
func (r LimitRules) Key(k *Key, u *User) ratelimit.Limits { return k.Limits.Within(r.User(u)) }

func ownOr(own, def int64) int64 {
	if own > 0 {
		return own
	}
	return def
}
