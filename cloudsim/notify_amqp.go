package cloudsim

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// AMQPPublisher publishes the simulator's notifications to a real AMQP
// 0-9-1 broker (RabbitMQ), on NotifyExchange as Nova does: `ostask sim
// --notify amqp://…`. A failed publish reconnects once and tries again;
// a notification that still cannot be published is lost, as with Nova.
type AMQPPublisher struct {
	url      string
	exchange string

	mu   sync.Mutex
	conn *amqp.Connection
	ch   *amqp.Channel
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
	conn, err := amqp.DialConfig(p.url, amqp.Config{Properties: amqp.Table{"connection_name": "cloudsim"},
		Dial: amqp.DefaultDial(5 * time.Second)})
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
	p.conn, p.ch = conn, ch
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
		_ = p.conn.Close()
	}
	p.conn, p.ch = nil, nil
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
	err := p.conn.Close()
	p.conn, p.ch = nil, nil
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	return err
}
