// Package messages holds the mutation messages of the cart service as the
// project models them (docs/model.md, "Messages"): the exported fields and
// json tags that protoc-gen-go would generate. Only what encoding/json sees
// matters here, so the protobuf runtime fields (state, sizeCache,
// unknownFields) are left out; encoding/json ignores unexported fields anyway.
package messages

// AddRequest adds a product by sku (resolved by a product service in the
// live system).
type AddRequest struct {
	Quantity int32   `json:"quantity,omitempty"`
	Sku      string  `json:"sku,omitempty"`
	Country  string  `json:"country,omitempty"`
	StoreId  *string `json:"storeId,omitempty"`
}

// SetCartRequest replaces the cart's items.
type SetCartRequest struct {
	Items []*AddRequest `json:"items,omitempty"`
}

// AddItem adds a fully described item.
type AddItem struct {
	ItemId      uint32  `json:"item_id,omitempty"`
	Quantity    int32   `json:"quantity,omitempty"`
	Price       int64   `json:"price,omitempty"`
	OrgPrice    int64   `json:"orgPrice,omitempty"`
	Sku         string  `json:"sku,omitempty"`
	Name        string  `json:"name,omitempty"`
	Image       string  `json:"image,omitempty"`
	Stock       int32   `json:"stock,omitempty"`
	Tax         int32   `json:"tax,omitempty"`
	Brand       string  `json:"brand,omitempty"`
	Category    string  `json:"category,omitempty"`
	Category2   string  `json:"category2,omitempty"`
	Category3   string  `json:"category3,omitempty"`
	Category4   string  `json:"category4,omitempty"`
	Category5   string  `json:"category5,omitempty"`
	Disclaimer  string  `json:"disclaimer,omitempty"`
	ArticleType string  `json:"articleType,omitempty"`
	SellerId    string  `json:"sellerId,omitempty"`
	SellerName  string  `json:"sellerName,omitempty"`
	Country     string  `json:"country,omitempty"`
	Outlet      *string `json:"outlet,omitempty"`
	StoreId     *string `json:"storeId,omitempty"`
	ParentId    *uint32 `json:"parentId,omitempty"`
}

// RemoveItem removes the item with the given cart item id.
type RemoveItem struct {
	Id uint32 `json:"Id,omitempty"`
}

// ChangeQuantity sets an item's quantity (<= 0 removes it).
type ChangeQuantity struct {
	Id       uint32 `json:"Id,omitempty"`
	Quantity int32  `json:"quantity,omitempty"`
}

// SetDelivery creates a delivery for some items.
type SetDelivery struct {
	Provider    string       `json:"provider,omitempty"`
	Items       []uint32     `json:"items,omitempty"`
	PickupPoint *PickupPoint `json:"pickupPoint,omitempty"`
	Country     string       `json:"country,omitempty"`
	Zip         string       `json:"zip,omitempty"`
	Address     *string      `json:"address,omitempty"`
	City        *string      `json:"city,omitempty"`
}

// PickupPoint is a delivery's pickup point.
type PickupPoint struct {
	Id      string  `json:"id,omitempty"`
	Name    *string `json:"name,omitempty"`
	Address *string `json:"address,omitempty"`
	City    *string `json:"city,omitempty"`
	Zip     *string `json:"zip,omitempty"`
	Country *string `json:"country,omitempty"`
}

// SetPickupPoint sets a delivery's pickup point.
type SetPickupPoint struct {
	DeliveryId uint32  `json:"deliveryId,omitempty"`
	Id         string  `json:"id,omitempty"`
	Name       *string `json:"name,omitempty"`
	Address    *string `json:"address,omitempty"`
	City       *string `json:"city,omitempty"`
	Zip        *string `json:"zip,omitempty"`
	Country    *string `json:"country,omitempty"`
}

// RemoveDelivery removes a delivery.
type RemoveDelivery struct {
	Id uint32 `json:"id,omitempty"`
}

// OrderCreated records the order.
type OrderCreated struct {
	OrderId string `json:"orderId,omitempty"`
	Status  string `json:"status,omitempty"`
}

// InitializeCheckout records the checkout start.
type InitializeCheckout struct {
	OrderId           string `json:"orderId,omitempty"`
	Status            string `json:"status,omitempty"`
	PaymentInProgress bool   `json:"paymentInProgress,omitempty"`
}
