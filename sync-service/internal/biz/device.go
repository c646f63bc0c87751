package biz

import "github.com/lurus-switch/lurus-switch/lurus-common/apperr"

// MaxDeviceIDLen is the longest device id accepted.
const MaxDeviceIDLen = 128

// CheckDeviceID accepts 1–128 characters of [A-Za-z0-9_.:-].
func CheckDeviceID(id string) error {
	if id == "" || len(id) > MaxDeviceIDLen {
		return apperr.New(apperr.ReasonInvalidDeviceID, "device_id must be 1-128 characters of [A-Za-z0-9_.:-]")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == ':', c == '-':
		default:
			return apperr.New(apperr.ReasonInvalidDeviceID, "device_id must be 1-128 characters of [A-Za-z0-9_.:-]")
		}
	}
	return nil
}
