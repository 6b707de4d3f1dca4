Stripe.webhook_secret = "whsec_iLLjvumORRIDnWTqEgH4POnLQedQLr84"
