<?php
/**
 * Plugin Name: storeplatform mail
 * Description: Sends the shop's e-mail through the platform's SMTP relay, or logs it when there is none.
 *
 * Shipped by the storeplatform WooCommerce chart and mounted read-only into
 * WPMU_PLUGIN_DIR of the site and of the cron Job. Configured only from the
 * environment the chart sets (templates/_helpers.tpl, "woo.smtpEnv"):
 *
 *   STORE_SMTP_HOST      relay host; "" = no relay, mail is logged, not sent
 *   STORE_SMTP_PORT      relay port
 *   STORE_SMTP_TLS       none | starttls | tls (implicit TLS, "SMTPS")
 *   STORE_SMTP_USER      "" = no authentication
 *   STORE_SMTP_PASSWORD  from the Secret named by smtp.existingSecret
 *   STORE_SMTP_FROM      sender address of every mail
 */

defined( 'ABSPATH' ) || exit;

function storeplatform_smtp_setting( $name, $default = '' ) {
	$value = getenv( 'STORE_SMTP_' . $name );
	return false === $value ? $default : $value;
}

// One line a mail, whatever the subject or the recipients contain.
function storeplatform_mail_log( $message, $fields ) {
	error_log( 'storeplatform mail: ' . $message . ' ' . wp_json_encode( $fields, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE ) );
}

if ( '' === storeplatform_smtp_setting( 'HOST' ) ) {
	// No relay configured: write who would have got which mail to the log and
	// report it as not sent (WordPress then says so where it would have said
	// "check your e-mail"). Never the body: password resets carry secrets.
	add_filter(
		'pre_wp_mail',
		function ( $result, $atts ) {
			storeplatform_mail_log(
				'no SMTP relay is configured, mail not sent:',
				array(
					'to'      => $atts['to'],
					'subject' => $atts['subject'],
				)
			);
			return false;
		},
		10,
		2
	);
	return;
}

add_action(
	'phpmailer_init',
	function ( $mailer ) {
		$mailer->isSMTP();
		$mailer->Host = storeplatform_smtp_setting( 'HOST' );
		$mailer->Port = (int) storeplatform_smtp_setting( 'PORT', '587' );
		// PHPMailer waits 300 s by default; a shopper's checkout must not.
		$mailer->Timeout = 15;

		// PHPMailer's names: 'tls' is STARTTLS, 'ssl' is implicit TLS.
		$tls = storeplatform_smtp_setting( 'TLS', 'starttls' );
		if ( 'tls' === $tls ) {
			$mailer->SMTPSecure  = 'ssl';
			$mailer->SMTPAutoTLS = false;
		} elseif ( 'none' === $tls ) {
			$mailer->SMTPSecure  = '';
			$mailer->SMTPAutoTLS = false;
		} else {
			$mailer->SMTPSecure = 'tls';
		}

		$user = storeplatform_smtp_setting( 'USER' );
		if ( '' !== $user ) {
			$mailer->SMTPAuth = true;
			$mailer->Username = $user;
			$mailer->Password = storeplatform_smtp_setting( 'PASSWORD' );
		}

		// Relays send for the platform's domain only: every mail leaves from
		// the platform's address, and the shop's own sender (WooCommerce's
		// "From" setting) becomes the Reply-To, so answers still reach it.
		$from = storeplatform_smtp_setting( 'FROM' );
		if ( '' !== $from && 0 !== strcasecmp( $mailer->From, $from ) ) {
			if ( ! $mailer->getReplyToAddresses() && is_email( $mailer->From ) ) {
				$mailer->addReplyTo( $mailer->From, $mailer->FromName );
			}
			$mailer->setFrom( $from, $mailer->FromName, false );
		}
		if ( '' !== $from ) {
			$mailer->Sender = $from;
		}
	}
);

add_action(
	'wp_mail_failed',
	function ( $error ) {
		storeplatform_mail_log(
			'sending failed:',
			array(
				'error' => $error->get_error_message(),
				'to'    => $error->get_error_data()['to'] ?? '',
			)
		);
	}
);
