package main

import (
	"errors"
	"time"

	"cfdiff/messages"
)

// The cart model of docs/model.md. All integers are int64 and wrap as Go
// wraps; division is Go's (truncating toward zero).

type cartItem struct {
	ID         int64   `json:"id"`
	ItemID     int64   `json:"itemId"`
	Sku        string  `json:"sku"`
	Name       string  `json:"name"`
	Image      string  `json:"image"`
	Price      int64   `json:"price"`
	OrgPrice   int64   `json:"orgPrice"`
	Qty        int64   `json:"qty"`
	TotalPrice int64   `json:"totalPrice"`
	Tax        int64   `json:"tax"`
	TaxRate    int64   `json:"taxRate"`
	Stock      int64   `json:"stock"`
	Type       string  `json:"type"`
	Brand      string  `json:"brand"`
	Category   string  `json:"category"`
	Category2  string  `json:"category2"`
	Category3  string  `json:"category3"`
	Category4  string  `json:"category4"`
	Category5  string  `json:"category5"`
	Disclaimer string  `json:"disclaimer"`
	SellerID   string  `json:"sellerId"`
	SellerName string  `json:"sellerName"`
	Outlet     *string `json:"outlet"`
	StoreID    *string `json:"storeId"`
	ParentID   *int64  `json:"parentId"`
	Unresolved bool    `json:"unresolved"`
}

type pickupPoint struct {
	ID      string  `json:"id"`
	Name    *string `json:"name"`
	Address *string `json:"address"`
	City    *string `json:"city"`
	Zip     *string `json:"zip"`
	Country *string `json:"country"`
}

type delivery struct {
	ID          int64        `json:"id"`
	Provider    string       `json:"provider"`
	Price       int64        `json:"price"`
	Items       []int64      `json:"items"`
	PickupPoint *pickupPoint `json:"pickupPoint"`
}

type cartState struct {
	ID                string     `json:"id"`
	Items             []cartItem `json:"items"`
	Deliveries        []delivery `json:"deliveries"`
	TotalPrice        int64      `json:"totalPrice"`
	TotalTax          int64      `json:"totalTax"`
	TotalDiscount     int64      `json:"totalDiscount"`
	Processing        bool       `json:"processing"`
	PaymentInProgress bool       `json:"paymentInProgress"`
	OrderReference    string     `json:"orderReference"`
	PaymentStatus     string     `json:"paymentStatus"`
	LastChange        *string    `json:"lastChange"`

	lastItemID     int64
	lastDeliveryID int64
}

const deliveryPrice = 4900

var (
	errInvalidQuantity  = errors.New("invalid quantity")
	errItemNotFound     = errors.New("item not found")
	errItemHasDelivery  = errors.New("item already has a delivery")
	errNoItems          = errors.New("no items")
	errDeliveryNotFound = errors.New("delivery not found")
)

func newCart(id string) *cartState {
	return &cartState{ID: id, Items: []cartItem{}, Deliveries: []delivery{}}
}

// clone copies everything a handler may change. Pointed-to strings and
// pickup points are never mutated in place, so sharing them is fine.
func (c *cartState) clone() *cartState {
	n := *c
	n.Items = make([]cartItem, len(c.Items))
	copy(n.Items, c.Items)
	n.Deliveries = make([]delivery, len(c.Deliveries))
	for i, d := range c.Deliveries {
		d.Items = append(make([]int64, 0, len(d.Items)), d.Items...)
		n.Deliveries[i] = d
	}
	return &n
}

func (c *cartState) setLastChange(t time.Time) {
	c.LastChange = strPtr(t.Format(time.RFC3339Nano))
}

// apply runs the handler for one decoded mutation. On error the receiver is
// unchanged; on success it holds the new state, recomputed.
func (c *cartState) apply(mutation interface{}, catalog map[string]*messages.AddItem) error {
	n := c.clone()
	var err error
	switch m := mutation.(type) {
	case *messages.AddItem:
		err = n.addItem(m)
	case *messages.AddRequest:
		err = n.addRequest(m, catalog)
	case *messages.SetCartRequest:
		n.Items = []cartItem{}
		for _, r := range m.GetItems() {
			if err = n.addRequest(r, catalog); err != nil {
				break
			}
		}
	case *messages.RemoveItem:
		err = n.removeItem(int64(m.GetId()))
	case *messages.ChangeQuantity:
		err = n.changeQuantity(m)
	case *messages.SetDelivery:
		err = n.setDelivery(m)
	case *messages.SetPickupPoint:
		d := n.findDelivery(int64(m.GetDeliveryId()))
		if d == nil {
			err = errDeliveryNotFound
		} else {
			d.PickupPoint = &pickupPoint{
				ID: m.Id, Name: m.Name, Address: m.Address,
				City: m.City, Zip: m.Zip, Country: m.Country,
			}
		}
	case *messages.RemoveDelivery:
		err = errDeliveryNotFound
		for i := range n.Deliveries {
			if n.Deliveries[i].ID == int64(m.GetId()) {
				n.Deliveries = append(n.Deliveries[:i], n.Deliveries[i+1:]...)
				err = nil
				break
			}
		}
	case *messages.InitializeCheckout:
		n.OrderReference = m.GetOrderId()
		n.PaymentStatus = m.GetStatus()
		n.PaymentInProgress = m.GetPaymentInProgress()
	case *messages.OrderCreated:
		n.OrderReference = m.GetOrderId()
		n.PaymentStatus = m.GetStatus()
		n.PaymentInProgress = false
	default:
		err = errors.New("no handler")
	}
	if err != nil {
		return err
	}
	n.recompute()
	*c = *n
	return nil
}

func sameStore(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func copyStr(p *string) *string {
	if p == nil {
		return nil
	}
	return strPtr(*p)
}

func taxRateOf(tax int32) int64 {
	if tax == 0 {
		return 2500
	}
	return int64(tax)
}

// itemFromAddItem builds a new item (id assigned by the caller) from an
// AddItem's fields.
func itemFromAddItem(m *messages.AddItem) cartItem {
	it := cartItem{
		ItemID:     int64(m.ItemId),
		Sku:        m.Sku,
		Name:       m.Name,
		Image:      m.Image,
		Price:      m.Price,
		OrgPrice:   m.OrgPrice,
		Qty:        int64(m.Quantity),
		TaxRate:    taxRateOf(m.Tax),
		Stock:      int64(m.Stock),
		Type:       m.ArticleType,
		Brand:      m.Brand,
		Category:   m.Category,
		Category2:  m.Category2,
		Category3:  m.Category3,
		Category4:  m.Category4,
		Category5:  m.Category5,
		Disclaimer: m.Disclaimer,
		SellerID:   m.SellerId,
		SellerName: m.SellerName,
		Outlet:     copyStr(m.Outlet),
		StoreID:    copyStr(m.StoreId),
	}
	if m.ParentId != nil {
		p := int64(*m.ParentId)
		it.ParentID = &p
	}
	return it
}

func (c *cartState) addItem(m *messages.AddItem) error {
	if m.GetQuantity() < 1 {
		return errInvalidQuantity
	}
	for i := range c.Items {
		if c.Items[i].Sku == m.Sku && sameStore(c.Items[i].StoreID, m.StoreId) {
			c.Items[i].Qty += int64(m.Quantity)
			return nil
		}
	}
	it := itemFromAddItem(m)
	c.lastItemID++
	it.ID = c.lastItemID
	c.Items = append(c.Items, it)
	return nil
}

func (c *cartState) addRequest(m *messages.AddRequest, catalog map[string]*messages.AddItem) error {
	q := m.GetQuantity()
	if q < 1 {
		return errInvalidQuantity
	}
	sku := m.GetSku()
	for i := range c.Items {
		if c.Items[i].Sku == sku {
			c.Items[i].Qty += int64(q)
			return nil
		}
	}
	var storeID *string
	if m != nil {
		storeID = copyStr(m.StoreId)
	}
	var it cartItem
	if entry, ok := catalog[sku]; ok {
		if entry == nil {
			entry = &messages.AddItem{}
		}
		it = itemFromAddItem(entry)
		it.Sku = sku
		it.Qty = int64(q)
		it.StoreID = storeID
	} else {
		it = cartItem{Sku: sku, Qty: int64(q), StoreID: storeID, TaxRate: 2500, Unresolved: true}
	}
	c.lastItemID++
	it.ID = c.lastItemID
	c.Items = append(c.Items, it)
	return nil
}

func (c *cartState) removeItem(id int64) error {
	idx := -1
	for i := range c.Items {
		if c.Items[i].ID == id {
			idx = i
			break
		}
	}
	if idx < 0 {
		return errItemNotFound
	}
	c.Items = append(c.Items[:idx], c.Items[idx+1:]...)
	for i := range c.Deliveries {
		kept := make([]int64, 0, len(c.Deliveries[i].Items))
		for _, x := range c.Deliveries[i].Items {
			if x != id {
				kept = append(kept, x)
			}
		}
		c.Deliveries[i].Items = kept
	}
	return nil
}

func (c *cartState) changeQuantity(m *messages.ChangeQuantity) error {
	id := int64(m.GetId())
	for i := range c.Items {
		if c.Items[i].ID == id {
			if m.GetQuantity() <= 0 {
				return c.removeItem(id)
			}
			c.Items[i].Qty = int64(m.GetQuantity())
			return nil
		}
	}
	return errItemNotFound
}

func (c *cartState) hasItem(id int64) bool {
	for i := range c.Items {
		if c.Items[i].ID == id {
			return true
		}
	}
	return false
}

func (c *cartState) inDelivery(id int64) bool {
	for _, d := range c.Deliveries {
		for _, x := range d.Items {
			if x == id {
				return true
			}
		}
	}
	return false
}

func (c *cartState) findDelivery(id int64) *delivery {
	for i := range c.Deliveries {
		if c.Deliveries[i].ID == id {
			return &c.Deliveries[i]
		}
	}
	return nil
}

func (c *cartState) setDelivery(m *messages.SetDelivery) error {
	items := []int64{}
	if len(m.GetItems()) == 0 {
		for _, it := range c.Items {
			if !c.inDelivery(it.ID) {
				items = append(items, it.ID)
			}
		}
		if len(items) == 0 {
			return errNoItems
		}
	} else {
		for _, x := range m.Items {
			id := int64(x)
			if !c.hasItem(id) {
				return errItemNotFound
			}
			if c.inDelivery(id) {
				return errItemHasDelivery
			}
			items = append(items, id)
		}
	}
	var pp *pickupPoint
	if p := m.GetPickupPoint(); p != nil {
		pp = &pickupPoint{
			ID: p.Id, Name: copyStr(p.Name), Address: copyStr(p.Address),
			City: copyStr(p.City), Zip: copyStr(p.Zip), Country: copyStr(p.Country),
		}
	}
	c.lastDeliveryID++
	c.Deliveries = append(c.Deliveries, delivery{
		ID:          c.lastDeliveryID,
		Provider:    m.GetProvider(),
		Price:       deliveryPrice,
		Items:       items,
		PickupPoint: pp,
	})
	return nil
}

func (c *cartState) recompute() {
	var total, tax, discount int64
	for i := range c.Items {
		it := &c.Items[i]
		it.TotalPrice = it.Price * it.Qty
		den := 10000 + it.TaxRate
		if den == 0 {
			it.Tax = 0
		} else {
			it.Tax = it.Price * it.Qty * it.TaxRate / den
		}
		total += it.TotalPrice
		tax += it.Tax
		if d := it.OrgPrice - it.Price; d > 0 {
			discount += d * it.Qty
		}
	}
	for _, d := range c.Deliveries {
		total += d.Price
	}
	c.TotalPrice = total
	c.TotalTax = tax
	c.TotalDiscount = discount
}
