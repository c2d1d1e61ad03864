package pipeline

import (
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tokenizer"
)

// OpenTokenizers returns src's two tokenizers as Load finds them: the
// diffusers folder's tokenizer and tokenizer_2, else those of configDir,
// else CLIP's embedded vocabulary with SDXL's special tokens. The trainer's
// text-embedding cache and pre-flight token counts use the same ones.
func OpenTokenizers(src *sdxl.Source, configDir string) (tok1, tok2 *tokenizer.Tokenizer, err error) {
	return openTokenizers(src, configDir)
}
