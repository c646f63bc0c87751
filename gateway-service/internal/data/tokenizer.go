package data

import (
	"sync"
	"sync/atomic"

	"github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// Tokenizer counts tokens with the cl100k_base BPE, loaded from the ranks
// embedded in tiktoken-go-loader: nothing is downloaded at run time. It is
// used only when upstream reports no usage, never on the hot path, so the
// ranks (a 100k-entry map that every GC cycle would have to scan) are
// loaded only when first needed, in the background; until then Count
// falls back to one token per four bytes.
type Tokenizer struct {
	once    sync.Once
	started atomic.Bool
	ready   atomic.Bool
	enc     *tiktoken.Tiktoken
	err     error
}

// NewTokenizer returns a tokenizer that loads on first use (or Warm).
func NewTokenizer() *Tokenizer { return &Tokenizer{} }

// Warm loads the encoding now (call it in the background at start).
func (t *Tokenizer) Warm() error {
	t.once.Do(func() {
		tiktoken.SetBpeLoader(tiktoken_loader.NewOfflineLoader())
		t.enc, t.err = tiktoken.GetEncoding(tiktoken.MODEL_CL100K_BASE)
		t.ready.Store(t.err == nil)
	})
	return t.err
}

// Count implements biz.TokenCounter. Until the encoding is loaded (or if
// it cannot load) it counts one token per four bytes.
func (t *Tokenizer) Count(text []byte) int64 {
	if len(text) == 0 {
		return 0
	}
	if !t.ready.Load() {
		if t.started.CompareAndSwap(false, true) {
			go func() { _ = t.Warm() }()
		}
		return int64(len(text)+3) / 4
	}
	return int64(len(t.enc.EncodeOrdinary(string(text))))
}
