// Package fielderr is the error the packages' Options.Validate methods
// return: one problem with one field, named as Go names it. The caller
// that built the Options from something else (package app, from
// gateway.yaml) translates the field into where its value came from, so
// the package never needs to know of the config file.
package fielderr

import (
	"errors"
	"strconv"
)

// Error is one problem with one field of a package's options.
type Error struct {
	// Pkg prefixes the message when it is shown on its own: "batch".
	Pkg string
	// Field is the Go field, or a dotted path into a list of structs
	// ("Parts.Key", with Index the part).
	Field string
	// Index is the position in a list field; -1 for the field as a
	// whole.
	Index int
	// Also is, for a duplicate, the position of the entry it repeats;
	// -1 otherwise.
	Also int
	Msg  string
}

// New returns a problem with the field as a whole.
func New(pkg, field, msg string) *Error {
	return &Error{Pkg: pkg, Field: field, Index: -1, Also: -1, Msg: msg}
}

// At returns a problem with entry i of a list field.
func At(pkg, field string, i int, msg string) *Error {
	return &Error{Pkg: pkg, Field: field, Index: i, Also: -1, Msg: msg}
}

// Error formats the problem as PKG: FIELD[INDEX]: MSG.
func (e *Error) Error() string {
	s := e.Pkg + ": " + e.Field
	if e.Index >= 0 {
		s += "[" + strconv.Itoa(e.Index) + "]"
	}
	s += ": " + e.Msg
	if e.Also >= 0 {
		s += " (also " + e.Field + "[" + strconv.Itoa(e.Also) + "])"
	}
	return s
}

// Split returns the problems err holds, as Validate returns them (one,
// or several joined), in order: those that are an *Error, and any
// others.
func Split(err error) (fields []*Error, others []error) {
	if err == nil {
		return nil, nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var fe *Error
		if errors.As(e, &fe) {
			fields = append(fields, fe)
		} else {
			others = append(others, e)
		}
	}
	return fields, others
}
