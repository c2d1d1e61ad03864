package assets

import "lorastudio/assets/clipvocab"

// CLIPVocabGz is CLIP's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz, openai/CLIP,
// MIT licence), the same bytes as clipvocab.BPEGz. The engine imports
// lorastudio/assets/clipvocab directly, which does not pull in the UI toolkit.
var CLIPVocabGz = clipvocab.BPEGz
