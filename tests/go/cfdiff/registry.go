package main

import (
	"cfdiff/messages"
)

// cartEventRecord is the seed writer's record, verbatim.
type cartEventRecord struct {
	Timestamp int64       `json:"ts"`
	Type      string      `json:"type"`
	Payload   interface{} `json:"payload"`
}

// registry of supported mutation payload type constructors (the seed's
// eventTypeFactories, verbatim).
var eventTypeFactories = map[string]func() interface{}{
	"AddRequest":         func() interface{} { return &messages.AddRequest{} },
	"AddItem":            func() interface{} { return &messages.AddItem{} },
	"RemoveItem":         func() interface{} { return &messages.RemoveItem{} },
	"RemoveDelivery":     func() interface{} { return &messages.RemoveDelivery{} },
	"ChangeQuantity":     func() interface{} { return &messages.ChangeQuantity{} },
	"SetDelivery":        func() interface{} { return &messages.SetDelivery{} },
	"SetPickupPoint":     func() interface{} { return &messages.SetPickupPoint{} },
	"SetCartRequest":     func() interface{} { return &messages.SetCartRequest{} },
	"OrderCreated":       func() interface{} { return &messages.OrderCreated{} },
	"InitializeCheckout": func() interface{} { return &messages.InitializeCheckout{} },
}

// createMutation is registry.Create: exact, case-sensitive lookup.
func createMutation(typ string) (interface{}, bool) {
	f, ok := eventTypeFactories[typ]
	if !ok {
		return nil, false
	}
	return f(), true
}
