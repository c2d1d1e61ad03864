// Package ui holds LoRA Studio's Fyne screens: the main window with its
// Dataset, Train, Playground and Settings tabs, and the widgets they use.
// Screens talk to the headless application layer (lorastudio/app/studio)
// only; background work reports back through callbacks that the UI applies
// with fromBackground (background.go), which serialises them.
package ui
