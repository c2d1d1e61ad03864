package studio

import "lorastudio/storage"

// The caption history as screens and commands see it. They talk to studio
// only (DESIGN.md: app → ui → app/studio → storage), so studio names the
// storage types and errors its Dataset methods hand out.

// Revision is one entry of an image's caption history (Dataset.History):
// its text, origin, time and place in the undo tree.
type Revision = storage.Revision

// Origin says what wrote a caption revision.
type Origin = storage.Origin

// The origins of caption revisions.
const (
	OriginManual   = storage.OriginManual   // typed and saved by the user
	OriginBulk     = storage.OriginBulk     // written by a bulk edit
	OriginUndo     = storage.OriginUndo     // an undo went back to an earlier text
	OriginRedo     = storage.OriginRedo     // a redo went forward again
	OriginRestore  = storage.OriginRestore  // an old revision restored as a new state
	OriginImport   = storage.OriginImport   // the caption file as first seen on disk
	OriginExternal = storage.OriginExternal // the caption file was changed by another program
)

// ErrNothingToUndo is returned (wrapped) by Dataset.Undo at the oldest
// caption state, and by Dataset.UndoLastBulk when no bulk edit is left.
var ErrNothingToUndo = storage.ErrNothingToUndo

// ErrNothingToRedo is returned (wrapped) by Dataset.Redo when no undone
// state is left to redo.
var ErrNothingToRedo = storage.ErrNothingToRedo
