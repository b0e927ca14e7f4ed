// Package messages stubs the cart's mutation messages (docs/model.md lists their fields; these
// carry the few the promservice corpus uses, with the same json keys).
package messages

type AddRequest struct {
	Quantity int32  `json:"quantity,omitempty"`
	Sku      string `json:"sku,omitempty"`
	Country  string `json:"country,omitempty"`
}
type AddItem struct {
	ItemId   uint32 `json:"item_id,omitempty"`
	Quantity int32  `json:"quantity,omitempty"`
	Price    int64  `json:"price,omitempty"`
	Sku      string `json:"sku,omitempty"`
	Name     string `json:"name,omitempty"`
}
type RemoveItem struct {
	Id uint32 `json:"Id,omitempty"`
}
type RemoveDelivery struct {
	Id uint32 `json:"id,omitempty"`
}
type ChangeQuantity struct {
	Id       uint32 `json:"Id,omitempty"`
	Quantity int32  `json:"quantity,omitempty"`
}
type SetDelivery struct {
	Provider string   `json:"provider,omitempty"`
	Items    []uint32 `json:"items,omitempty"`
}
type SetPickupPoint struct {
	DeliveryId uint32 `json:"deliveryId,omitempty"`
	Id         string `json:"id,omitempty"`
}
type SetCartRequest struct {
	Items []*AddRequest `json:"items,omitempty"`
}
type OrderCreated struct {
	OrderId string `json:"orderId,omitempty"`
	Status  string `json:"status,omitempty"`
}
type InitializeCheckout struct {
	OrderId           string `json:"orderId,omitempty"`
	Status            string `json:"status,omitempty"`
	PaymentInProgress bool   `json:"paymentInProgress,omitempty"`
}
