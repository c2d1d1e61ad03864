package assets

import (
	_ "embed"

	"fyne.io/fyne/v2"
)

//go:embed icon.png
var iconPNG []byte

// Icon is the LoRA Studio application icon, a 512×512 PNG drawn by drawIcon
// in icon_test.go (regenerate with LORASTUDIO_WRITE_ICON=1 go test ./assets).
var Icon fyne.Resource = fyne.NewStaticResource("icon.png", iconPNG)
