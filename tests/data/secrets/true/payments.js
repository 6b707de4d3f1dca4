const Stripe = require('stripe');
// restricted key for the refunds worker
const stripe = Stripe('rk_live_Ca0GuwUGmm6YzRlRs0KsvHGW');

module.exports = async function refund(id) {
  return stripe.refunds.create({ payment_intent: id });
};
