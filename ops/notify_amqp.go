package ops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// amqpStream is a NotificationStream on an AMQP 0-9-1 broker (RabbitMQ):
// one connection, one exclusive auto-delete queue of the Cloud's own bound
// to the topics, so that the Cloud takes no message from the cloud's other
// consumers and its queue goes away with it.
type amqpStream struct {
	url      string
	exchange string
	topics   []string
	secrets  []string

	mu   sync.Mutex
	conn *amqp.Connection // the current connection (tests cut it)
}

// amqpDialTimeout bounds the TCP connect and the AMQP handshake.
const amqpDialTimeout = 5 * time.Second

func (s *amqpStream) Listen(ctx context.Context, up func(), deliver func(string, []byte)) error {
	conn, err := amqp.DialConfig(s.url, amqp.Config{
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Properties: amqp.Table{"connection_name": "ostask"},
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: amqpDialTimeout}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The handshake must not hang on a broker that accepts and
			// says nothing; amqp091 clears the deadline once connected.
			if err := c.SetDeadline(time.Now().Add(amqpDialTimeout)); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	s.mu.Lock()
	s.conn = conn
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.conn = nil
		s.mu.Unlock()
		_ = conn.Close()
	}()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	q, err := s.bind(conn)
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	// No acknowledgements: a message lost with the connection is one the
	// reconciliation rounds make up for, and acks would cost a round trip
	// per batch for nothing.
	dels, err := ch.ConsumeWithContext(ctx, q, "", true, true, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume from %s: %w", q, err)
	}
	up()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-closed:
			if !ok || e == nil {
				return errors.New("the connection was closed")
			}
			return fmt.Errorf("the broker closed the connection: %w", e)
		case d, ok := <-dels:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("the broker cancelled the consumer")
			}
			deliver(d.RoutingKey, d.Body)
		}
	}
}

// bind declares the exchange (if missing) and the Cloud's queue, binds the
// topics and returns the queue's name. A failed declaration closes its
// channel, so each step that may fail has a channel of its own.
func (s *amqpStream) bind(conn *amqp.Connection) (string, error) {
	ch, err := conn.Channel()
	if err != nil {
		return "", fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	// As oslo.messaging declares it: topic, not durable, not auto-delete.
	// A cloud that declared it otherwise keeps its own: use it as it is.
	if err := ch.ExchangeDeclare(s.exchange, "topic", false, false, false, false, nil); err != nil {
		ch2, cerr := conn.Channel()
		if cerr != nil {
			return "", fmt.Errorf("open channel: %w", cerr)
		}
		defer ch2.Close()
		if perr := ch2.ExchangeDeclarePassive(s.exchange, "topic", false, false, false, false, nil); perr != nil {
			return "", fmt.Errorf("exchange %q: %w", s.exchange, err)
		}
		ch = ch2
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return "", fmt.Errorf("declare queue: %w", err)
	}
	for _, t := range s.topics {
		if err := ch.QueueBind(q.Name, t, s.exchange, false, nil); err != nil {
			return "", fmt.Errorf("bind %s to %q: %w", t, s.exchange, err)
		}
	}
	return q.Name, nil
}

// cut closes the current connection, as a broker restart or a network
// failure would (tests).
func (s *amqpStream) cut() bool {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn == nil {
		return false
	}
	_ = conn.Close()
	return true
}
