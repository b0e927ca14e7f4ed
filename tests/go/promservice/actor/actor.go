// Package actor stubs the one interface event_log.go needs from the cart actor: a mutation
// registry that makes a message from its type name and applies it to a grain.
package actor

// MutationRegistry creates mutation messages by type name and applies them to a grain.
type MutationRegistry interface {
	Create(typeName string) (interface{}, bool)
	Apply(grain interface{}, mutation interface{}) error
}
