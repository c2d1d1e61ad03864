package ui

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
)

// Action is one command of a screen with the keyboard shortcuts that run it.
// The first shortcut is the one shown in menus.
type Action struct {
	Menu      string // the main menu it belongs to: "File", "Caption" or "Go"
	Label     string
	Shortcuts []fyne.Shortcut
	Run       func()
}

// ctrl is the platform's shortcut modifier: Control, or Command on macOS.
const ctrl = fyne.KeyModifierShortcutDefault

// key builds a desktop shortcut for a key and modifiers.
func key(name fyne.KeyName, mod fyne.KeyModifier) fyne.Shortcut {
	return &desktop.CustomShortcut{KeyName: name, Modifier: mod}
}

// actionTable finds an action's function by a shortcut's name.
type actionTable map[string]func()

// newActionTable indexes every shortcut of the actions.
func newActionTable(actions []Action) actionTable {
	t := actionTable{}
	for _, a := range actions {
		for _, s := range a.Shortcuts {
			t[s.ShortcutName()] = a.Run
		}
	}
	return t
}

// run runs the action bound to s and reports whether there was one.
func (t actionTable) run(s fyne.Shortcut) bool {
	f, ok := t[s.ShortcutName()]
	if ok {
		f()
	}
	return ok
}

// shortcutText renders a shortcut for people: "Ctrl+S", "Alt+Right".
func shortcutText(s fyne.Shortcut) string {
	switch s.(type) {
	case *fyne.ShortcutUndo:
		return modName(ctrl) + "+Z"
	case *fyne.ShortcutRedo:
		return modName(ctrl) + "+Y"
	}
	c, ok := s.(*desktop.CustomShortcut)
	if !ok {
		return s.ShortcutName()
	}
	var parts []string
	for _, m := range []fyne.KeyModifier{fyne.KeyModifierControl, fyne.KeyModifierAlt, fyne.KeyModifierShift, fyne.KeyModifierSuper} {
		if c.Modifier&m != 0 {
			parts = append(parts, modName(m))
		}
	}
	return strings.Join(append(parts, string(c.KeyName)), "+")
}

// modName names one modifier key.
func modName(m fyne.KeyModifier) string {
	switch m {
	case fyne.KeyModifierControl:
		return "Ctrl"
	case fyne.KeyModifierAlt:
		return "Alt"
	case fyne.KeyModifierShift:
		return "Shift"
	case fyne.KeyModifierSuper:
		return "Cmd"
	}
	return "?"
}
