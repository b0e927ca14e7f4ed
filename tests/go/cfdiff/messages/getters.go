package messages

// Nil-safe getters in protoc-gen-go style: a nil message reads as the zero
// message, an unset optional field as its zero value.

func derefString(p *string) string {
	if p != nil {
		return *p
	}
	return ""
}

func (x *AddRequest) GetQuantity() int32 {
	if x != nil {
		return x.Quantity
	}
	return 0
}

func (x *AddRequest) GetSku() string {
	if x != nil {
		return x.Sku
	}
	return ""
}

func (x *AddRequest) GetCountry() string {
	if x != nil {
		return x.Country
	}
	return ""
}

func (x *AddRequest) GetStoreId() string {
	if x != nil {
		return derefString(x.StoreId)
	}
	return ""
}

func (x *SetCartRequest) GetItems() []*AddRequest {
	if x != nil {
		return x.Items
	}
	return nil
}

func (x *AddItem) GetItemId() uint32 {
	if x != nil {
		return x.ItemId
	}
	return 0
}

func (x *AddItem) GetQuantity() int32 {
	if x != nil {
		return x.Quantity
	}
	return 0
}

func (x *AddItem) GetPrice() int64 {
	if x != nil {
		return x.Price
	}
	return 0
}

func (x *AddItem) GetOrgPrice() int64 {
	if x != nil {
		return x.OrgPrice
	}
	return 0
}

func (x *AddItem) GetSku() string {
	if x != nil {
		return x.Sku
	}
	return ""
}

func (x *AddItem) GetTax() int32 {
	if x != nil {
		return x.Tax
	}
	return 0
}

func (x *RemoveItem) GetId() uint32 {
	if x != nil {
		return x.Id
	}
	return 0
}

func (x *ChangeQuantity) GetId() uint32 {
	if x != nil {
		return x.Id
	}
	return 0
}

func (x *ChangeQuantity) GetQuantity() int32 {
	if x != nil {
		return x.Quantity
	}
	return 0
}

func (x *SetDelivery) GetProvider() string {
	if x != nil {
		return x.Provider
	}
	return ""
}

func (x *SetDelivery) GetItems() []uint32 {
	if x != nil {
		return x.Items
	}
	return nil
}

func (x *SetDelivery) GetPickupPoint() *PickupPoint {
	if x != nil {
		return x.PickupPoint
	}
	return nil
}

func (x *PickupPoint) GetId() string {
	if x != nil {
		return x.Id
	}
	return ""
}

func (x *SetPickupPoint) GetDeliveryId() uint32 {
	if x != nil {
		return x.DeliveryId
	}
	return 0
}

func (x *RemoveDelivery) GetId() uint32 {
	if x != nil {
		return x.Id
	}
	return 0
}

func (x *OrderCreated) GetOrderId() string {
	if x != nil {
		return x.OrderId
	}
	return ""
}

func (x *OrderCreated) GetStatus() string {
	if x != nil {
		return x.Status
	}
	return ""
}

func (x *InitializeCheckout) GetOrderId() string {
	if x != nil {
		return x.OrderId
	}
	return ""
}

func (x *InitializeCheckout) GetStatus() string {
	if x != nil {
		return x.Status
	}
	return ""
}

func (x *InitializeCheckout) GetPaymentInProgress() bool {
	if x != nil {
		return x.PaymentInProgress
	}
	return false
}
