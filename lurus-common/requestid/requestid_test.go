package requestid

import "testing"

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"01ARZ3NDEKTSV4RRFFQ69G5FAV":           true,
		"550e8400-e29b-41d4-a716-446655440000": true,
		"550E8400-E29B-41D4-A716-446655440000": true,
		"550e8400e29b41d4a716446655440000":     false,
		"550e8400-e29b-41d4-a716-44665544000g": false,
		"01ARZ3NDEKTSV4RRFFQ69G5FA!":           false,
		"":                                     false,
		"req-1":                                false,
		"x\ny":                                 false,
	} {
		if Valid(s) != want {
			t.Errorf("Valid(%q) != %v", s, want)
		}
	}
	if id := From("bogus"); !Valid(id) || len(id) != 26 {
		t.Fatalf("From(bogus) = %q", id)
	}
	if id := From("01ARZ3NDEKTSV4RRFFQ69G5FAV"); id != "01ARZ3NDEKTSV4RRFFQ69G5FAV" {
		t.Fatal("valid id not kept")
	}
	if New() == New() {
		t.Fatal("ids repeat")
	}
}
