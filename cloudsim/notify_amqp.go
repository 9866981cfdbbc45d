package cloudsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// AMQPPublisher publishes the simulator's notifications to a real AMQP
// 0-9-1 broker (RabbitMQ), on NotifyExchange as Nova does: `ostask sim
// --notify amqp://…`. A failed publish reconnects once and tries again;
// a notification that still cannot be published is lost, as with Nova.
// The simulator's pipe sends the notifications it finds queued together
// in one write (Hold, Flush); a write that fails loses them.
type AMQPPublisher struct {
	url      string
	exchange string

	mu      sync.Mutex
	conn    *amqp.Connection
	ch      *amqp.Channel
	wire    *heldConn // conn's socket
	holding bool      // between Hold and Flush
}

// heldConn is a connection's socket that, while held, keeps what is
// written to it until flush: the frames of several publishes, and
// anything else the client writes meanwhile (a heartbeat).
type heldConn struct {
	net.Conn
	mu   sync.Mutex
	held bool
	buf  []byte
}

func (c *heldConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held {
		c.buf = append(c.buf, b...)
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func (c *heldConn) hold() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// flush writes what was held and stops holding.
func (c *heldConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > 1<<20 {
		c.buf = nil // a burst's buffer is not kept for ever
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// DialAMQP connects to the broker at url and declares exchange ("" means
// NotifyExchange) as oslo.messaging does (topic, not durable). Close it
// after the simulator.
func DialAMQP(url, exchange string) (*AMQPPublisher, error) {
	if exchange == "" {
		exchange = NotifyExchange
	}
	p := &AMQPPublisher{url: url, exchange: exchange}
	if err := p.connect(); err != nil {
		return nil, err
	}
	return p, nil
}

func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func (p *AMQPPublisher) connect() error {
	var wire *heldConn
	dial := amqp.DefaultDial(5 * time.Second)
	conn, err := amqp.DialConfig(p.url, amqp.Config{Properties: amqp.Table{"connection_name": "cloudsim"},
		Dial: func(network, addr string) (net.Conn, error) {
			c, err := dial(network, addr)
			if err != nil {
				return nil, err
			}
			wire = &heldConn{Conn: c}
			return wire, nil
		}})
	if err != nil {
		// amqp091 errors carry no URL; say which broker, password masked.
		return fmt.Errorf("cloudsim: notifications: connect to %s: %w", redactedURL(p.url), err)
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.ExchangeDeclare(p.exchange, "topic", false, false, false, false, nil)
	}
	if err != nil {
		conn.Close()
		return fmt.Errorf("cloudsim: notifications: declare exchange %q at %s: %w", p.exchange, redactedURL(p.url), err)
	}
	p.conn, p.ch, p.wire = conn, ch, wire
	if p.holding {
		// Only now: the handshake and the declarations wait for answers.
		wire.hold()
	}
	return nil
}

// Hold keeps what Publish sends until Flush.
func (p *AMQPPublisher) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding = true
	if p.wire != nil {
		p.wire.hold()
	}
}

// Flush writes what was published since Hold, at once. If the write
// fails, that is lost and the next Publish reconnects.
func (p *AMQPPublisher) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding = false
	if p.wire == nil {
		return nil
	}
	if err := p.wire.flush(); err != nil {
		p.dropLocked()
		return fmt.Errorf("cloudsim: notifications: write to %s: %w", redactedURL(p.url), err)
	}
	return nil
}

// Publish sends one notification.
func (p *AMQPPublisher) Publish(ctx context.Context, routingKey string, body []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	msg := amqp.Publishing{ContentType: "application/json", ContentEncoding: "utf-8", Body: body}
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if p.ch == nil {
			if err = p.connect(); err != nil {
				continue
			}
		}
		if err = p.ch.PublishWithContext(ctx, p.exchange, routingKey, false, false, msg); err == nil {
			return nil
		}
		p.dropLocked()
	}
	return err
}

func (p *AMQPPublisher) dropLocked() {
	if p.conn != nil {
		if p.wire != nil {
			_ = p.wire.flush() // what is held goes before the close, or fails with it
		}
		_ = p.conn.Close()
	}
	p.conn, p.ch, p.wire = nil, nil, nil
}

// Cut closes the connection, as a broker restart would; the next
// Publish reconnects.
func (p *AMQPPublisher) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropLocked()
}

// Close closes the connection.
func (p *AMQPPublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		return nil
	}
	p.holding = false
	_ = p.wire.flush()
	err := p.conn.Close()
	p.conn, p.ch, p.wire = nil, nil, nil
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	return err
}
