// Package clipvocab embeds CLIP's byte-level BPE vocabulary,
// bpe_simple_vocab_16e6.txt.gz from github.com/openai/CLIP (MIT licence,
// Copyright (c) 2021 OpenAI).
//
// It is a leaf package of its own, apart from package assets, so that the
// engine can embed the vocabulary without importing the UI toolkit.
package clipvocab

import _ "embed"

// BPEGz is the gzip-compressed vocabulary: a header line, then one merge
// ("a b") per line, in rank order.
//
//go:embed bpe_simple_vocab_16e6.txt.gz
var BPEGz []byte
