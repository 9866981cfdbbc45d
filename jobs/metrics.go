package jobs

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostask/ostask/ops"
)

// metrics are the queue's and its workers' Prometheus metrics.
type metrics struct {
	reg          prometheus.Registerer
	collectors   []prometheus.Collector
	createdTotal prometheus.Counter
	finishedBy   *prometheus.CounterVec
	stepDuration *prometheus.HistogramVec
	queueLatency prometheus.Histogram

	mu     sync.Mutex
	clouds map[string]*ops.Cloud // by project
}

func newMetrics(q *Queue, reg prometheus.Registerer) *metrics {
	m := &metrics{
		reg: reg,
		createdTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ostask_tasks_created_total", Help: "Tasks created (idempotent replays not counted).",
		}),
		finishedBy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ostask_tasks_finished_total", Help: "Tasks that ended, by final status, as recorded by this process's workers.",
		}, []string{"status"}),
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ostask_task_step_duration_seconds", Help: "Time a step of a task's flow spent running, by kind and the state it reached.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"kind", "to"}),
		queueLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ostask_task_queue_latency_seconds", Help: "Time from a task's creation to its first claim by a worker.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 12),
		}),
		clouds: map[string]*ops.Cloud{},
	}
	m.collectors = []prometheus.Collector{m.createdTotal, m.finishedBy, m.stepDuration, m.queueLatency,
		&stateCollector{q: q}, &cloudCollector{m: m}}
	if reg != nil {
		for _, c := range m.collectors {
			if err := reg.Register(c); err != nil {
				q.log.Warn("metric not registered", "err", err)
			}
		}
	}
	return m
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

func (m *metrics) created(n int)          { m.createdTotal.Add(float64(n)) }
func (m *metrics) finished(status string) { m.finishedBy.WithLabelValues(status).Inc() }

// cloud remembers a project's cloud, for the requests it made.
func (m *metrics) cloud(project string, c *ops.Cloud) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clouds[project] = c
}

var tasksDesc = prometheus.NewDesc("ostask_tasks", "Tasks in the database, by status.", []string{"status"}, nil)

// stateCollector counts tasks by status at each scrape.
type stateCollector struct{ q *Queue }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- tasksDesc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts := map[string]float64{}
	for _, s := range Statuses {
		counts[string(s)] = 0
	}
	rs, err := c.q.db.query(ctx, qry("task_counts"))
	if err != nil {
		ch <- prometheus.NewInvalidMetric(tasksDesc, err)
		return
	}
	defer rs.Close()
	for rs.Next() {
		var s string
		var n int64
		if err := rs.Scan(&s, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(tasksDesc, err)
			return
		}
		counts[s] = float64(n)
	}
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(tasksDesc, prometheus.GaugeValue, n, s)
	}
}

var (
	cloudRequestsDesc = prometheus.NewDesc("ostask_cloud_requests_total", "HTTP requests made to a project's cloud by this process's workers (monitors included).", []string{"cloud"}, nil)
	monitorRoundsDesc = prometheus.NewDesc("ostask_monitor_rounds_total", "Monitor rounds (list requests) by cloud and resource kind.", []string{"cloud", "kind"}, nil)
	notifyConnDesc    = prometheus.NewDesc("ostask_notifications_connected", "1 while a project's cloud receives the cloud's notifications (absent when they are off).", []string{"cloud"}, nil)
	notifyRecvDesc    = prometheus.NewDesc("ostask_notifications_received_total", "Notification messages received by a project's cloud.", []string{"cloud"}, nil)
	notifyDoneDesc    = prometheus.NewDesc("ostask_notification_completions_total", "Operations completed by a notification rather than by a monitor round.", []string{"cloud"}, nil)
	notifyMissedDesc  = prometheus.NewDesc("ostask_notification_missed_total", "Completions a reconciliation round found before any notification reported them.", []string{"cloud"}, nil)
)

// cloudCollector reports ops.Cloud.Stats of the workers' clouds.
type cloudCollector struct{ m *metrics }

func (c *cloudCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cloudRequestsDesc
	ch <- monitorRoundsDesc
	ch <- notifyConnDesc
	ch <- notifyRecvDesc
	ch <- notifyDoneDesc
	ch <- notifyMissedDesc
}

func (c *cloudCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	clouds := make(map[string]*ops.Cloud, len(c.m.clouds))
	for p, cl := range c.m.clouds {
		clouds[p] = cl
	}
	c.m.mu.Unlock()
	for p, cl := range clouds {
		st := cl.Stats()
		ch <- prometheus.MustNewConstMetric(cloudRequestsDesc, prometheus.CounterValue, float64(st.Requests), p)
		for k, n := range st.Rounds {
			ch <- prometheus.MustNewConstMetric(monitorRoundsDesc, prometheus.CounterValue, float64(n), p, string(k))
		}
		if ns := st.Notifications; ns != nil {
			conn := 0.0
			if ns.Connected {
				conn = 1
			}
			ch <- prometheus.MustNewConstMetric(notifyConnDesc, prometheus.GaugeValue, conn, p)
			ch <- prometheus.MustNewConstMetric(notifyRecvDesc, prometheus.CounterValue, float64(ns.Received), p)
			ch <- prometheus.MustNewConstMetric(notifyDoneDesc, prometheus.CounterValue, float64(ns.Completions), p)
			ch <- prometheus.MustNewConstMetric(notifyMissedDesc, prometheus.CounterValue, float64(ns.Missed), p)
		}
	}
}
