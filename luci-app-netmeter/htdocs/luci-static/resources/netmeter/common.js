'use strict';
'require baseclass';
'require rpc';
'require dom';

// Shared by the netmeter views: the rpcd calls (object luci.netmeter,
// /usr/libexec/rpcd/luci.netmeter), a sortable table and a bar chart.

var SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, children) {
	var el = document.createElementNS(SVG, tag);
	for (var k in attrs)
		el.setAttribute(k, attrs[k]);
	(children || []).forEach(function(c) {
		el.appendChild(typeof(c) == 'string' ? document.createTextNode(c) : c);
	});
	return el;
}

function bytes(n) { return '%1024.2mB'.format(n || 0); }
function rate(n) { return '%1024.2mB/s'.format(n || 0); }

function bucketLabel(period, t) {
	var d = new Date(t * 1000);
	function p2(n) { return (n < 10 ? '0' : '') + n; }
	switch (period) {
	case 'fiveminute':
	case 'hour': return p2(d.getHours()) + ':' + p2(d.getMinutes());
	case 'day': return d.getFullYear() + '-' + p2(d.getMonth() + 1) + '-' + p2(d.getDate());
	case 'month': return d.getFullYear() + '-' + p2(d.getMonth() + 1);
	default: return String(d.getFullYear());
	}
}

return baseclass.extend({
	callStatus: rpc.declare({ object: 'luci.netmeter', method: 'status' }),
	callInterfaces: rpc.declare({ object: 'luci.netmeter', method: 'interfaces' }),
	callDevices: rpc.declare({ object: 'luci.netmeter', method: 'devices' }),
	callUpstream: rpc.declare({ object: 'luci.netmeter', method: 'upstream' }),
	callQuotas: rpc.declare({ object: 'luci.netmeter', method: 'quotas' }),
	callHistory: rpc.declare({
		object: 'luci.netmeter', method: 'history',
		params: [ 'interface', 'device', 'period' ]
	}),

	bytes: bytes,
	rate: rate,

	// An answer of the plugin that is not the daemon's: a warning box
	// saying why (and how to start the daemon), else null.
	problem: function(answer) {
		if (answer && answer.error == null)
			return null;
		var msg = answer ? answer.message : _('No answer from the rpcd plugin luci.netmeter');
		var box = E('div', { 'class': 'alert-message warning', 'id': 'netmeter-problem' }, [
			E('strong', {}, answer && answer.error == 'not_running'
				? _('netmeter is not running') : _('netmeter cannot be asked')),
			E('p', {}, msg)
		]);
		if (answer && answer.error == 'not_running')
			box.appendChild(E('p', {}, [ _('Start it on the router with'), ' ',
				E('code', {}, '/etc/init.d/netmeter start'), ' ',
				_('(and enable it at boot with'), ' ', E('code', {}, '/etc/init.d/netmeter enable'), ')' ]));
		return box;
	},

	// A table over rows sorted by one column; a click on a column title
	// sorts by it (again: the other way). columns: [{ key, title, value(row),
	// text(row), numeric }]; state: { key, desc, selected }; rowId(row).
	sortableTable: function(id, columns, rows, state, rowId, onSelect, empty) {
		var col = columns.filter(function(c) { return c.key == state.key; })[0] || columns[0];
		var sorted = rows.slice().sort(function(a, b) {
			var x = col.value(a), y = col.value(b);
			var r = (typeof(x) == 'number' && typeof(y) == 'number') ? x - y : String(x).localeCompare(String(y));
			return state.desc ? -r : r;
		});
		var self = this;
		var table = E('table', { 'class': 'table', 'id': id }, [
			E('tr', { 'class': 'tr table-titles' }, columns.map(function(c) {
				return E('th', {
					'class': 'th' + (c.numeric ? ' right' : ''),
					'data-k': c.key,
					'aria-sort': c.key != col.key ? 'none' : (state.desc ? 'descending' : 'ascending')
				}, E('button', {
					'class': 'btn cbi-button', 'style': 'border:0;background:none;padding:0;font-weight:bold',
					'click': function(ev) {
						ev.stopPropagation();
						if (state.key == c.key)
							state.desc = !state.desc;
						else {
							state.key = c.key;
							state.desc = !!c.numeric;
						}
						dom.content(table.parentNode, self.sortableTable(id, columns, rows, state, rowId, onSelect, empty));
					}
				}, [ c.title, c.key == col.key ? (state.desc ? ' \u25bc' : ' \u25b2') : '' ]));
			}))
		]);
		sorted.forEach(function(r) {
			var rid = rowId(r);
			table.appendChild(E('tr', {
				'class': 'tr' + (rid == state.selected ? ' cbi-rowstyle-2' : ''),
				'data-id': rid,
				'aria-current': rid == state.selected ? 'true' : null,
				'style': 'cursor:pointer',
				'click': function() { onSelect(r); }
			}, columns.map(function(c) {
				return E('td', { 'class': 'td' + (c.numeric ? ' right' : ''), 'data-title': c.title, 'data-k': c.key,
					'style': c.numeric ? 'white-space:nowrap' : null },
					c.text ? c.text(r) : String(c.value(r)));
			})));
		});
		if (!sorted.length)
			table.appendChild(E('tr', { 'class': 'tr placeholder' },
				E('td', { 'class': 'td', 'colspan': columns.length }, E('em', {}, empty))));
		return table;
	},

	// Bars of a history series: download (rx) and upload (tx) per bucket.
	chart: function(series, period) {
		var buckets = (series && series.buckets) || [];
		var W = 760, H = 220, top = 10, left = 70, bottom = 30;
		var max = 1;
		buckets.forEach(function(b) { max = Math.max(max, b.rx_bytes, b.tx_bytes); });
		var step = buckets.length ? (W - left - 10) / buckets.length : 1;
		var bw = Math.min(24, Math.max(1, step / 2 - 1));
		var g = svg('g', {});
		var plot = H - top - bottom;
		g.appendChild(svg('text', { x: left - 6, y: top + 10, 'text-anchor': 'end', 'font-size': 11 }, [ bytes(max) ]));
		g.appendChild(svg('text', { x: left - 6, y: H - bottom, 'text-anchor': 'end', 'font-size': 11 }, [ '0' ]));
		g.appendChild(svg('line', { x1: left, y1: H - bottom, x2: W - 10, y2: H - bottom, stroke: '#888' }));
		buckets.forEach(function(b, i) {
			[ [ 'rx', b.rx_bytes, 0, '#2a7ab0' ], [ 'tx', b.tx_bytes, 1, '#e08a1e' ] ].forEach(function(d) {
				var h = d[1] > 0 ? Math.max(1, d[1] / max * plot) : 0;
				g.appendChild(svg('rect', {
					'class': 'bar ' + d[0], 'data-bytes': d[1],
					x: (left + i * step + d[2] * (bw + 1)).toFixed(1), y: (H - bottom - h).toFixed(1),
					width: bw.toFixed(1), height: h.toFixed(1), fill: d[3]
				}, [ svg('title', {}, [ bucketLabel(period, b.start) + ' ' +
					(d[0] == 'rx' ? _('download') : _('upload')) + ' ' + bytes(d[1]) ]) ]));
			});
		});
		if (buckets.length) {
			g.appendChild(svg('text', { x: left, y: H - 8, 'font-size': 11 }, [ bucketLabel(period, buckets[0].start) ]));
			g.appendChild(svg('text', { x: W - 10, y: H - 8, 'font-size': 11, 'text-anchor': 'end' },
				[ bucketLabel(period, buckets[buckets.length - 1].start) ]));
		}
		var el = svg('svg', {
			viewBox: '0 0 ' + W + ' ' + H, width: '100%', style: 'max-width:' + W + 'px',
			role: 'img', 'aria-label': (series ? series.name : '') + ', ' + period
		}, [ g ]);
		return E('div', { 'class': 'netmeter-chart' }, [ el, E('div', { 'style': 'font-size:90%' }, [
			E('span', { 'style': 'color:#2a7ab0' }, '\u25a0 ' + _('Download')), ' ',
			E('span', { 'style': 'color:#e08a1e' }, '\u25a0 ' + _('Upload'))
		]) ]);
	},

	// Period buttons and the chart of one series; load(period) gives the
	// plugin's history answer.
	historyPanel: function(periods, period, load) {
		var self = this;
		var box = E('div', { 'id': 'netmeter-chart' }, E('em', { 'class': 'spinning' }, _('Loading…')));
		var buttons = E('div', { 'class': 'cbi-section-actions', 'id': 'netmeter-periods' });
		function show(p) {
			buttons.querySelectorAll('button').forEach(function(b) {
				b.classList.toggle('cbi-button-positive', b.getAttribute('data-p') == p);
			});
			return load(p).then(function(h) {
				var bad = self.problem(h);
				dom.content(box, bad || self.chart(h.series && h.series[0], p));
			});
		}
		periods.forEach(function(p) {
			buttons.appendChild(E('button', {
				'class': 'btn cbi-button', 'data-p': p[0], 'click': function() { show(p[0]); }
			}, p[1]));
			buttons.appendChild(document.createTextNode(' '));
		});
		show(period);
		return E('div', {}, [ buttons, box ]);
	}
});
